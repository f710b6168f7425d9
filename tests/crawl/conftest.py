"""Fixtures for crawl tests: the generated docs site served on 127.0.0.1, and crawl settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from crawl_helpers import ServedSite, crawlrag_chromium_processes
from sitegen import SiteInfo, build_docs_site, serve_site

from crawlrag.config import Settings


@pytest.fixture(scope="session")
def docs_site(tmp_path_factory: pytest.TempPathFactory) -> SiteInfo:
    return build_docs_site(tmp_path_factory.mktemp("docs-site"))


@pytest.fixture
def site(docs_site: SiteInfo) -> Iterator[ServedSite]:
    served = ServedSite(base_url="", info=docs_site)
    with serve_site(docs_site.root, hits=served.hits, statuses=served.statuses) as base_url:
        served.base_url = base_url
        yield served


@pytest.fixture
def crawl_settings() -> Callable[..., Settings]:
    """Settings with every crawl option spelled out, so neither the environment nor .env changes a test."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": "sqlite:///:memory:",
            "allow_private_network": True,
            "allowed_hosts": [],
            "browser": "never",
            "chromium_path": None,
            "respect_robots_txt": True,
            "user_agent": "crawlrag-tests/1.0",
            "max_concurrent": 10,
            "request_timeout_seconds": 10.0,
            "max_response_bytes": 1024 * 1024,
            "max_redirects": 5,
            "max_sitemap_urls": 1000,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return build


@pytest.fixture
def no_leftover_chromium() -> Iterator[None]:
    """Fail the test if a crawlrag Chromium still runs after it (and kill it so later tests are not affected)."""
    yield
    leftovers = crawlrag_chromium_processes()
    for process in leftovers:
        process.kill()
    assert not leftovers, f"chromium processes left running: {[process.pid for process in leftovers]}"
