"""A documentation site with versions 1.0 and 2.0 at different paths of one host, served on 127.0.0.1.

    with serve_versions(tmp_path) as base:   # base like "http://127.0.0.1:41234"
        base + "/docs/1.0/", base + "/docs/2.0/"

Both versions have the same pages (`index.html`, `install.html`, `config.html`), each page links to the same
page of the other version (a version switcher), and each version's text names what only it has: version 1.0
installs with `setup.py develop` and reads `legacy.ini`, version 2.0 installs with `pip install frobnicate` and
reads `frobnicate.toml`. `/shared.html` sits outside both versions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sitegen import serve_site

VERSIONS = ("1.0", "2.0")
INSTALL = {
    "1.0": "Install the frobnicator from a source checkout with the setup.py develop command of version one.",
    "2.0": "Install the frobnicator from the package index with pip install frobnicate in version two.",
}
CONFIG = {
    "1.0": "Configure the frobnicator in the legacy.ini file; every option goes in the main section.",
    "2.0": "Configure the frobnicator in the frobnicate.toml file; options are grouped in tables.",
}


def _page(version: str, name: str, title: str, text: str) -> str:
    other = "2.0" if version == "1.0" else "1.0"
    return (
        f"<!DOCTYPE html><html><head><title>{title} ({version})</title></head><body>"
        f'<nav><a href="/docs/{other}/{name}">Version {other}</a></nav><main><h1>{title}</h1>'
        f"<p>{text}</p>"
        '<p><a href="index.html">Home</a> <a href="install.html">Install</a> <a href="config.html">Config</a>'
        ' <a href="/shared.html">Shared</a></p>'
        "</main></body></html>"
    )


def build_version_site(root: Path) -> Path:
    for version in VERSIONS:
        folder = root / "docs" / version
        folder.mkdir(parents=True)
        intro = f"The frobnicator documentation for release {version}: installing and configuring it."
        (folder / "index.html").write_text(_page(version, "index.html", "Frobnicator docs", intro))
        (folder / "install.html").write_text(_page(version, "install.html", "Installation", INSTALL[version]))
        (folder / "config.html").write_text(_page(version, "config.html", "Configuration", CONFIG[version]))
    (root / "shared.html").write_text(
        "<!DOCTYPE html><html><head><title>Shared</title></head><body><main><h1>Shared page</h1>"
        "<p>A page about the frobnicator community that belongs to no version of the documentation.</p>"
        "</main></body></html>"
    )
    return root


@contextlib.contextmanager
def serve_versions(directory: Path) -> Iterator[str]:
    with serve_site(build_version_site(directory)) as base:
        yield base
