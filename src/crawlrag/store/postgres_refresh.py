"""What a refresh needs from the PostgreSQL store: the crawls of each source, its schedule, and removing pages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from crawlrag.store.base import RefreshSchedule, SourceCrawl
from crawlrag.store.postgres_write import clean


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def record_crawl(
    conn: psycopg.Connection[Any],
    source_id: str,
    url: str,
    options: Mapping[str, Any],
    refresh_interval_hours: float | None,
) -> None:
    conn.execute(
        "INSERT INTO source_crawls (source_id, url, options) VALUES (%s, %s, %s)"
        " ON CONFLICT (source_id, url) DO UPDATE SET options = EXCLUDED.options, updated_at = now()",
        (source_id, clean(url), Jsonb(dict(options))),
    )
    if refresh_interval_hours is not None:
        conn.execute(
            "UPDATE sources SET refresh_interval_hours = %s WHERE source_id = %s", (refresh_interval_hours, source_id)
        )


def source_crawls(conn: psycopg.Connection[Any], source_id: str) -> list[SourceCrawl]:
    rows = conn.execute(
        "SELECT url, options, updated_at FROM source_crawls WHERE source_id = %s ORDER BY created_at, url",
        (source_id,),
    ).fetchall()
    return [SourceCrawl(row[0], dict(row[1]), row[2].astimezone(UTC)) for row in rows]


def refresh_schedule(conn: psycopg.Connection[Any]) -> list[RefreshSchedule]:
    rows = conn.execute(
        "SELECT s.source_id, s.refresh_interval_hours, s.refreshed_at, p.last_crawled FROM sources s"
        " LEFT JOIN (SELECT source_id, max(crawled_at) AS last_crawled FROM pages GROUP BY source_id) p"
        " ON p.source_id = s.source_id ORDER BY s.source_id"
    ).fetchall()
    return [RefreshSchedule(row[0], row[1], _utc(row[2]), _utc(row[3])) for row in rows]


def mark_refreshed(conn: psycopg.Connection[Any], source_id: str) -> None:
    conn.execute("UPDATE sources SET refreshed_at = now() WHERE source_id = %s", (source_id,))


def source_page_urls(conn: psycopg.Connection[Any], source_id: str) -> list[str]:
    rows = conn.execute("SELECT url FROM pages WHERE source_id = %s ORDER BY url", (source_id,)).fetchall()
    return [row[0] for row in rows]


def delete_pages(conn: psycopg.Connection[Any], source_id: str, urls: Sequence[str]) -> int:
    """Chunks (with their tsvector and HNSW entries) and code examples go with their pages (ON DELETE CASCADE)."""
    deleted = conn.execute(
        "DELETE FROM pages WHERE source_id = %s AND url = ANY(%s)",
        (source_id, [clean(url) for url in dict.fromkeys(urls)]),
    ).rowcount
    if deleted:
        conn.execute("UPDATE sources SET updated_at = now() WHERE source_id = %s", (source_id,))
    return int(deleted)
