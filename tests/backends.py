"""Helpers for tests that run against both store backends."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import psycopg


def with_database(url: str, dbname: str | None = None, search_path: str | None = None) -> str:
    """`url` pointing at another database and/or with a search_path, in the form it came in."""
    if url.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        if search_path is not None:
            query["options"] = f"-csearch_path={search_path}"
        path = f"/{quote(dbname)}" if dbname is not None else parts.path
        return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), parts.fragment))
    extra: dict[str, str] = {}
    if dbname is not None:
        extra["dbname"] = dbname
    if search_path is not None:
        extra["options"] = f"-csearch_path={search_path}"
    return psycopg.conninfo.make_conninfo(url, **extra)
