"""What a refresh needs from the SQLite store: the crawls of each source, its schedule, and removing pages."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from crawlrag.models import utcnow
from crawlrag.store.base import RefreshSchedule, SourceCrawl

# SQLite's default limit of host parameters per statement is 999 (older builds): stay well below it.
_BATCH = 500


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def record_crawl(
    conn: sqlite3.Connection,
    source_id: str,
    url: str,
    options: Mapping[str, Any],
    refresh_interval_hours: float | None,
) -> None:
    now = utcnow().isoformat()
    conn.execute(
        "INSERT INTO source_crawls (source_id, url, options, created_at, updated_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (source_id, url) DO UPDATE SET options = excluded.options, updated_at = excluded.updated_at",
        (source_id, url, json.dumps(dict(options)), now, now),
    )
    if refresh_interval_hours is not None:
        conn.execute(
            "UPDATE sources SET refresh_interval_hours = ? WHERE source_id = ?", (refresh_interval_hours, source_id)
        )


def source_crawls(conn: sqlite3.Connection, source_id: str) -> list[SourceCrawl]:
    rows = conn.execute(
        "SELECT url, options, updated_at FROM source_crawls WHERE source_id = ? ORDER BY created_at, url",
        (source_id,),
    ).fetchall()
    return [SourceCrawl(row[0], json.loads(row[1]), datetime.fromisoformat(row[2])) for row in rows]


def refresh_schedule(conn: sqlite3.Connection) -> list[RefreshSchedule]:
    rows = conn.execute(
        "SELECT s.source_id, s.refresh_interval_hours, s.refreshed_at,"
        " (SELECT MAX(crawled_at) FROM pages p WHERE p.source_id = s.source_id)"
        " FROM sources s ORDER BY s.source_id"
    ).fetchall()
    return [RefreshSchedule(row[0], row[1], _ts(row[2]), _ts(row[3])) for row in rows]


def mark_refreshed(conn: sqlite3.Connection, source_id: str) -> None:
    conn.execute("UPDATE sources SET refreshed_at = ? WHERE source_id = ?", (utcnow().isoformat(), source_id))


def source_page_urls(conn: sqlite3.Connection, source_id: str) -> list[str]:
    return [row[0] for row in conn.execute("SELECT url FROM pages WHERE source_id = ? ORDER BY url", (source_id,))]


def delete_pages(conn: sqlite3.Connection, source_id: str, urls: Sequence[str]) -> tuple[int, list[int], list[int]]:
    """Delete the pages (chunks, code examples and their FTS rows go with them through the cascade and the
    delete triggers); returns the page count and the chunk and code example ids the vector matrices must drop."""
    deleted, chunk_ids, code_ids = 0, [], []
    unique = list(dict.fromkeys(urls))
    for start in range(0, len(unique), _BATCH):
        batch = unique[start : start + _BATCH]
        marks = ",".join("?" * len(batch))
        page_ids = [
            row[0]
            for row in conn.execute(
                f"SELECT id FROM pages WHERE source_id = ? AND url IN ({marks})", (source_id, *batch)
            )
        ]
        if not page_ids:
            continue
        id_marks = ",".join("?" * len(page_ids))
        chunk_ids += [row[0] for row in conn.execute(f"SELECT id FROM chunks WHERE page_id IN ({id_marks})", page_ids)]
        code_ids += [
            row[0] for row in conn.execute(f"SELECT id FROM code_examples WHERE page_id IN ({id_marks})", page_ids)
        ]
        deleted += conn.execute(f"DELETE FROM pages WHERE id IN ({id_marks})", page_ids).rowcount
    if deleted:
        conn.execute("UPDATE sources SET updated_at = ? WHERE source_id = ?", (utcnow().isoformat(), source_id))
    return deleted, chunk_ids, code_ids
