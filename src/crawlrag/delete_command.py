"""`crawlrag delete SOURCE [--version V] [--yes]`: confirm on a terminal, refuse without --yes otherwise."""

from __future__ import annotations

from collections.abc import Callable

from crawlrag.deletion import DeletePlan, DeleteReport, delete, plan_delete
from crawlrag.store import Store


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
