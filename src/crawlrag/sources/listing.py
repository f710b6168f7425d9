"""Stored sources as users see them: one entry per site, with its versions (newest first) and their counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crawlrag.models import SourceInfo
from crawlrag.sources.versions import version_order

_COUNTS = ("pages", "chunks", "words", "code_examples")


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def version_view(info: SourceInfo) -> dict[str, Any]:
    return {
        "version": info.version,
        **{name: getattr(info, name) for name in _COUNTS},
        "last_crawled": _iso(info.last_crawled),
        "created_at": _iso(info.created_at),
        "summary": info.summary,
    }


def sites_view(infos: Sequence[SourceInfo]) -> list[dict[str, Any]]:
    """One object per site: the fields a source always had (counts summed over its versions, the summary and
    model of its default version), `default_version` (what a search without a version reads) and `versions`."""
    by_site: dict[str, list[SourceInfo]] = {}
    for info in infos:
        by_site.setdefault(info.site or info.source_id, []).append(info)
    sites = []
    for site in sorted(by_site):
        versions = sorted(by_site[site], key=lambda info: version_order(info.version))
        default = versions[0]
        crawled = [info.last_crawled for info in versions if info.last_crawled is not None]
        created = [info.created_at for info in versions if info.created_at is not None]
        sites.append(
            {
                "source_id": site,
                "summary": default.summary,
                **{name: sum(getattr(info, name) for info in versions) for name in _COUNTS},
                "embedding_model": default.embedding_model,
                "embedding_dim": default.embedding_dim,
                "created_at": _iso(min(created)) if created else None,
                "last_crawled": _iso(max(crawled)) if crawled else None,
                "default_version": default.version,
                "versions": [version_view(info) for info in versions],
            }
        )
    return sites
