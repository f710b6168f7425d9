"""The rules of refresh without a site: settings, option bounds, sitemap lastmod, which pages a refresh removes,
and when a source is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crawlrag.config import ConfigError, Settings, load_settings
from crawlrag.crawl import CrawlInputError, PageFailure, PageSkipped
from crawlrag.crawl.sitemap import parse_lastmod, parse_sitemap
from crawlrag.pipeline.options import CrawlOptions
from crawlrag.pipeline.refresh import plan_removals
from crawlrag.pipeline.report import IndexProgress, IndexReport
from crawlrag.pipeline.schedule import is_due
from crawlrag.store.base import RefreshSchedule

SITE = "https://docs.example.com"
STORED = [f"{SITE}/", f"{SITE}/a.html", f"{SITE}/b.html", f"{SITE}/c.html"]


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, database_url="sqlite:///unused.db", **values)  # type: ignore[arg-type]


def test_refresh_settings_are_validated() -> None:
    assert settings().refresh_interval_hours is None
    assert settings(refresh_interval_hours="").refresh_interval_hours is None
    assert settings(refresh_interval_hours="0.5").refresh_interval_hours == 0.5
    with pytest.raises(ConfigError, match="REFRESH_INTERVAL_HOURS"):
        load_settings(_env_file=None, database_url="sqlite:///unused.db", refresh_interval_hours=-1)
    with pytest.raises(ConfigError, match="REFRESH_CHECK_SECONDS"):
        load_settings(_env_file=None, database_url="sqlite:///unused.db", refresh_check_seconds=0)


def test_a_crawl_refresh_interval_is_bounded_and_stored_with_the_options() -> None:
    options = CrawlOptions.build(settings(), url=f"{SITE}/", refresh_interval_hours=6)
    assert options.to_stored()["refresh_interval_hours"] == 6.0
    assert CrawlOptions.from_stored(options.url, options.to_stored(), settings()) == options
    for bad in (-1, 10_000, "daily", True, float("nan")):
        with pytest.raises(CrawlInputError, match="refresh_interval_hours"):
            CrawlOptions.build(settings(), url=f"{SITE}/", refresh_interval_hours=bad)


def test_sitemap_lastmod_is_read_as_utc_and_a_date_means_its_whole_day() -> None:
    assert parse_lastmod("2024-05-02T10:00:00+02:00") == datetime(2024, 5, 2, 8, 0, tzinfo=UTC)
    assert parse_lastmod("2024-05-02T10:00:00Z") == datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
    assert parse_lastmod("2024-05-02") == datetime(2024, 5, 3, tzinfo=UTC) - timedelta(microseconds=1)
    assert parse_lastmod("yesterday") is None and parse_lastmod("") is None
    xml = (
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>/a</loc><lastmod>2024-01-01'
        b"</lastmod></url><url><loc>/b</loc><lastmod>soon</lastmod></url></urlset>"
    )
    parsed = parse_sitemap(xml, f"{SITE}/sitemap.xml", max_bytes=10_000)
    assert parsed.locations == (f"{SITE}/a", f"{SITE}/b") and list(parsed.lastmod) == [f"{SITE}/a"]


def crawl_report(reached: list[str], failures: tuple[PageFailure, ...] = (), **extra: object) -> IndexReport:
    report = IndexReport(IndexProgress(max_pages=100), failures=list(failures), reached=set(reached))
    for name, value in extra.items():
        setattr(report, name, value)
    return report


def plan(report: IndexReport, max_pages: int = 100) -> tuple[list[str], str | None]:
    options = CrawlOptions(url=f"{SITE}/", max_depth=3, max_pages=max_pages, max_concurrent=4)
    return plan_removals(STORED, [(options, report)])


def test_unreached_and_gone_pages_are_removed_when_the_crawl_saw_the_whole_site() -> None:
    gone = PageFailure(f"{SITE}/b.html", "HTTP 404", 404)
    assert plan(crawl_report([f"{SITE}/", f"{SITE}/a.html"], (gone,))) == ([f"{SITE}/b.html", f"{SITE}/c.html"], None)
    # Another spelling of a reached page is the same page.
    assert plan(crawl_report([f"{SITE}/index.html", f"{SITE}/a.html", f"{SITE}/b.html/", f"{SITE}/c.html"])) == (
        [],
        None,
    )


@pytest.mark.parametrize(
    ("report", "reason"),
    [
        (crawl_report([f"{SITE}/"], (PageFailure(f"{SITE}/a.html", "timed out"),)), "failed"),
        (crawl_report([f"{SITE}/"], (PageFailure(f"{SITE}/a.html", "HTTP 503", 503),)), "failed"),
        (crawl_report([f"{SITE}/", f"{SITE}/a.html"], time_limit_reached=True), "time limit"),
        (
            crawl_report([f"{SITE}/", f"{SITE}/a.html"], skipped=[PageSkipped(f"{SITE}/c.html", "crawl time limit")]),
            "time limit",
        ),
        (crawl_report([f"{SITE}/"]), "no page but the start page"),
    ],
)
def test_unreached_pages_stay_when_the_crawl_may_have_missed_them(report: IndexReport, reason: str) -> None:
    removed, kept = plan(report)
    assert removed == [] and kept is not None and reason in kept


def test_a_crawl_stopped_by_max_pages_removes_only_gone_pages() -> None:
    gone = PageFailure(f"{SITE}/c.html", "HTTP 410", 410)
    removed, kept = plan(crawl_report([f"{SITE}/", f"{SITE}/a.html"], (gone,)), max_pages=2)
    assert removed == [f"{SITE}/c.html"] and kept is not None and "max_pages=2" in kept


@pytest.mark.parametrize(
    "failure",
    [PageFailure(f"{SITE}/", "connection refused"), PageFailure(f"{SITE}/", "HTTP 404", 404)],
)
def test_a_refresh_whose_start_page_fails_removes_nothing(failure: PageFailure) -> None:
    gone = PageFailure(f"{SITE}/b.html", "HTTP 404", 404)
    removed, kept = plan(crawl_report([], (failure, gone)))
    assert removed == [] and kept is not None and "nothing was removed" in kept


def test_a_source_is_due_once_its_interval_has_passed_since_its_last_crawl_or_refresh() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    day_ago, hour_ago = now - timedelta(days=1), now - timedelta(hours=1)
    own = RefreshSchedule("a", 12.0, refreshed_at=None, last_crawled=day_ago)
    assert is_due(own, now, None) and not is_due(own, now - timedelta(hours=13), None)
    assert not is_due(RefreshSchedule("a", 12.0, refreshed_at=hour_ago, last_crawled=day_ago), now, None)
    assert not is_due(RefreshSchedule("a", 0.0, None, day_ago), now, 1.0)  # 0: never, whatever the default
    assert is_due(RefreshSchedule("a", None, None, day_ago), now, 6.0)
    assert not is_due(RefreshSchedule("a", None, None, day_ago), now, None)  # no interval anywhere: off
