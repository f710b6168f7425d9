"""Fixtures for the content tests: sites built once per session by Sphinx and MkDocs Material, DocBook pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from generators import build_mkdocs_site, build_sphinx_site, write_docbook_pages

PYDOCS = Path("/usr/share/doc/python3.11/html")


@pytest.fixture(scope="session")
def sphinx_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sphinx_site(tmp_path_factory.mktemp("sphinx"))


@pytest.fixture(scope="session")
def mkdocs_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_mkdocs_site(tmp_path_factory.mktemp("mkdocs"))


@pytest.fixture(scope="session")
def docbook_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_docbook_pages(tmp_path_factory.mktemp("docbook"))


@pytest.fixture(scope="session")
def pydocs() -> Path:
    if not (PYDOCS / "library" / "csv.html").is_file():
        pytest.skip("the Python 3.11 HTML docs are not installed (Debian package python3.11-doc)")
    return PYDOCS
