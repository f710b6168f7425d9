"""Which stored sources a search reads: a site and version asked for, or each site's newest version.

A version that is not indexed is refused with the ones that are; it is never replaced by another. Without a
version a site is searched in its newest version (`crawlrag.sources.versions.newest_first`), and the answer says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crawlrag.models import CodeHit, SearchHit, SourceVersion
from crawlrag.sources.versions import VersionError, check_version, newest_first

MAX_LISTED = 20


class SearchInputError(ValueError):
    """The query or its options are not acceptable; the message says which and why."""


class ScopeError(SearchInputError):
    """The source or version asked for is not indexed; `fields` go into the tool's structured failure."""

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.fields = fields


@dataclass(frozen=True, slots=True)
class SearchScope:
    # The source keys to search; None: every stored row (each site has a single version, so no filter is needed).
    keys: tuple[str, ...] | None
    versions: dict[str, str]  # site -> the version searched
    pairs: dict[str, tuple[str, str]] = field(default_factory=dict)  # source key -> (site, version)

    def label(self, hit: SearchHit | CodeHit) -> None:
        """Give a store hit its site (as `source_id`, the name users know) and version."""
        site, version = self.pairs.get(hit.source_id, (hit.source_id, hit.version))
        hit.source_id, hit.version = site, version


def _shown(text: str) -> str:
    # The caller's text: a bounded prefix, never an echo of whatever was sent.
    return text if len(text) <= 100 else f"{text[:100]}…"


def resolve_scope(entries: Sequence[SourceVersion], source: str | None, version: str | None) -> SearchScope:
    """The scope of a search of `source` (a site; None: every site) in `version` (None: the newest)."""
    by_site: dict[str, list[SourceVersion]] = {}
    for entry in entries:
        by_site.setdefault(entry.site, []).append(entry)
    pairs = {entry.source_id: (entry.site, entry.version) for entry in entries}
    if source is not None and source not in by_site and source in pairs:
        # A source key (`site@version`, as the web UI's rows name them) stands for its pair.
        site, key_version = pairs[source]
        if version is None or version.strip() == key_version:
            source, version = site, key_version
    if version is not None:
        if source is None:
            raise ScopeError("a version needs a source: pass the site as well (see get_available_sources)")
        try:
            version = check_version(version)
        except VersionError as exc:
            raise ScopeError(str(exc)) from None
    if source is not None:
        if source not in by_site:
            known = sorted(by_site)
            shown = ", ".join(known[:MAX_LISTED]) or "none yet; crawl a site first"
            raise ScopeError(
                f"unknown source {_shown(source)!r}; available sources: {shown} (see get_available_sources)",
                available_sources=known[:MAX_LISTED],
            )
        by_site = {source: by_site[source]}
    chosen: list[SourceVersion] = []
    for site, site_entries in by_site.items():
        indexed = newest_first(entry.version for entry in site_entries)
        wanted = version if version is not None else indexed[0]
        if wanted not in indexed:
            raise ScopeError(
                f"version {_shown(wanted)!r} of {site} is not indexed; indexed versions: {', '.join(indexed)} "
                f"(crawl it with --version {_shown(wanted)} to add it)",
                source=site,
                version=wanted,
                indexed_versions=indexed,
            )
        chosen += [entry for entry in site_entries if entry.version == wanted]
    keys: tuple[str, ...] | None = tuple(sorted(entry.source_id for entry in chosen))
    if source is None and len(chosen) == len(entries):
        keys = None  # every stored source is searched: no filter (the stores' fastest path)
    return SearchScope(keys, {entry.site: entry.version for entry in chosen}, pairs)
