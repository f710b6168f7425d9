"""Which stored sources a command means: a site, and optionally one of its versions."""

from __future__ import annotations

from crawlrag.models import SourceInfo
from crawlrag.sources.scope import ScopeError
from crawlrag.sources.versions import VersionError, check_version, newest_first
from crawlrag.store import Store


def select_versions(store: Store, site: str, version: str | None = None) -> tuple[list[SourceInfo], list[str]]:
    """The stored versions of `site` (every one, or `version`), and all its indexed versions, newest first.

    ScopeError names what is stored when the site or the version is not: never a silent substitute."""
    infos = [info for info in store.list_sources() if info.site == site]
    if not infos:
        known = sorted({info.site for info in store.list_sources()})
        shown = ", ".join(known[:20]) or "none"
        named = site if len(site) <= 100 else f"{site[:100]}…"
        raise ScopeError(f"unknown source {named!r}; available sources: {shown}", available_sources=known[:20])
    indexed = newest_first(info.version for info in infos)
    if version is None:
        return infos, indexed
    try:
        version = check_version(version)
    except VersionError as exc:
        raise ScopeError(str(exc)) from None
    targets = [info for info in infos if info.version == version]
    if not targets:
        raise ScopeError(
            f"version {version!r} of {site} is not indexed; indexed versions: {', '.join(indexed)}",
            source=site,
            version=version,
            indexed_versions=indexed,
        )
    return targets, indexed
