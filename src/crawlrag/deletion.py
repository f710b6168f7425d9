"""Deleting a site, or one version of it: what would go, and removing it in one store transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crawlrag.models import DeletedCounts, SourceInfo
from crawlrag.search_scope import ScopeError
from crawlrag.store import Store
from crawlrag.versions import VersionError, check_version, newest_first


@dataclass(frozen=True, slots=True)
class DeletePlan:
    site: str
    targets: list[SourceInfo]  # the versions to delete, newest first
    remaining: list[str] = field(default_factory=list)  # the site's versions that stay

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.site,
            "versions": [
                {
                    "version": info.version,
                    "pages": info.pages,
                    "chunks": info.chunks,
                    "code_examples": info.code_examples,
                }
                for info in self.targets
            ],
            "remaining_versions": self.remaining,
        }


@dataclass(frozen=True, slots=True)
class DeleteReport:
    site: str
    deleted: list[DeletedCounts]
    remaining: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.site,
            "deleted": [counts.to_dict() for counts in self.deleted],
            "remaining_versions": self.remaining,
        }


def plan_delete(store: Store, site: str, version: str | None) -> DeletePlan:
    """What deleting `site` (every version) or one `version` of it removes; ScopeError when it is not stored."""
    infos = [info for info in store.list_sources() if info.site == site]
    if not infos:
        known = sorted({info.site for info in store.list_sources()})
        shown = ", ".join(known[:20]) or "none"
        named = site if len(site) <= 100 else f"{site[:100]}…"
        raise ScopeError(f"unknown source {named!r}; available sources: {shown}", available_sources=known[:20])
    indexed = newest_first(info.version for info in infos)
    if version is None:
        targets = infos
    else:
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
    gone = {info.version for info in targets}
    order = {name: position for position, name in enumerate(indexed)}
    return DeletePlan(
        site,
        sorted(targets, key=lambda info: order[info.version]),
        [name for name in indexed if name not in gone],
    )


def delete(store: Store, plan: DeletePlan) -> DeleteReport:
    """Remove the plan's versions (pages, chunks, code examples, vectors, keyword rows) in one transaction."""
    counts = store.delete_sources([info.source_id for info in plan.targets])
    deleted = [counts[info.source_id] for info in plan.targets if info.source_id in counts]
    return DeleteReport(plan.site, deleted, plan.remaining)
