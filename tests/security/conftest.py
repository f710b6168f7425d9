"""Fixtures for the hostile-input suite, and the count of hostile cases printed at the end of the run.

Every test marked `hostile` feeds crawlrag one hostile input and checks for a clear error or a clean skip, a
process that still works, and a database left alone where nothing should change. Settings here refuse private
addresses (ALLOW_PRIVATE_NETWORK=false); the served test site is reached through the name DOCS_HOST, which the
fake resolver points at 127.0.0.1 and ALLOWED_HOSTS exempts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile_http import HostileServer
from security_helpers import DOCS_HOST, FakeResolver, suite_resolver

from crawlrag.config import Settings

HOSTILE = "hostile"
_HERE = Path(__file__).parent


class HostileCaseCounter:
    """Counts the hostile cases collected in this directory (before -k/-m deselection) and how they ended."""

    def __init__(self) -> None:
        self.collected = 0
        self.modules: set[str] = set()
        self.outcomes: Counter[str] = Counter()

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        ours = [item for item in items if item.path.parent == _HERE]
        self.modules = {item.path.name for item in ours}
        self.collected = sum(1 for item in ours if item.get_closest_marker(HOSTILE))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if HOSTILE not in report.keywords:
            return
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.outcomes["xfailed" if hasattr(report, "wasxfail") else report.outcome] += 1

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.collected:
            ran = ", ".join(f"{count} {outcome}" for outcome, count in sorted(self.outcomes.items()))
            terminalreporter.write_line(f"hostile-input cases: {self.collected} collected ({ran or 'none run'})")

    def all_modules_collected(self) -> bool:
        return self.modules >= {path.name for path in _HERE.glob("test_*.py")}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{HOSTILE}: one hostile input case (counted in the terminal summary)")
    if not config.pluginmanager.has_plugin("crawlrag-hostile-counter"):
        config.pluginmanager.register(HostileCaseCounter(), "crawlrag-hostile-counter")


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as served:
        yield served


@pytest.fixture
def resolver() -> FakeResolver:
    return suite_resolver()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hostile.db"


@pytest.fixture
def hostile_settings(db_path: Path) -> Callable[..., Settings]:
    """Settings with every option that matters spelled out: private networks refused, DOCS_HOST exempt."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{db_path}",
            "allow_private_network": False,
            "allowed_hosts": [DOCS_HOST],
            "browser": "never",
            "chromium_path": None,
            "respect_robots_txt": False,
            "user_agent": "crawlrag-hostile-tests/1.0",
            "max_depth": 3,
            "max_pages": 200,
            "max_concurrent": 4,
            "request_timeout_seconds": 3.0,
            "crawl_timeout_seconds": 60.0,
            "max_response_bytes": 256 * 1024,
            "max_redirects": 5,
            "max_sitemap_urls": 1000,
            "max_sitemap_depth": 3,
            "chunk_size": 1000,
            "use_reranking": False,
            "use_agentic_rag": False,
            "crawl_wait_seconds": 20.0,
            "log_level": "WARNING",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return build


@pytest.fixture
def no_leftover_chromium() -> Iterator[None]:
    """Fail the test if a crawlrag Chromium still runs after it (and kill it so later tests are not affected)."""
    import psutil

    yield
    leftovers = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any("crawlrag-chromium-" in part for part in process.info.get("cmdline") or []):
                leftovers.append(process)
        except psutil.Error:
            continue
    for process in leftovers:
        process.kill()
    assert not leftovers, f"chromium processes left running: {[process.pid for process in leftovers]}"
