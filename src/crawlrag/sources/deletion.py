"""Deleting a site, or one version of it: what would go, removing it in one store transaction, and the
confirmation `crawlrag delete SOURCE [--version V] [--yes]` asks for (on a terminal; without --yes, refused
otherwise)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crawlrag.models import DeletedCounts, SourceInfo
from crawlrag.sources.selection import select_versions
from crawlrag.store import Store


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
    targets, indexed = select_versions(store, site, version)
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


class NotConfirmed(RuntimeError):
    """The deletion was not confirmed; nothing was deleted."""


def describe(plan: DeletePlan) -> str:
    versions = ", ".join(
        f"{info.version} ({info.pages} pages, {info.chunks} chunks, {info.code_examples} code examples)"
        for info in plan.targets
    )
    kept = f"; {', '.join(plan.remaining)} stay" if plan.remaining else ""
    return f"{plan.site}: {versions}{kept}"


def run_delete(
    store: Store,
    site: str,
    version: str | None,
    *,
    yes: bool,
    interactive: bool,
    confirm: Callable[[str], bool],
) -> DeleteReport:
    """Delete after `--yes`, or after `confirm(question)` on a terminal; NotConfirmed otherwise."""
    plan = plan_delete(store, site, version)
    if not yes:
        if not interactive:
            raise NotConfirmed(f"refusing to delete {describe(plan)} without --yes (stdin is not a terminal)")
        if not confirm(f"Delete {describe(plan)}?"):
            raise NotConfirmed("nothing deleted")
    return delete(store, plan)
