"""The destructive tool: delete a source (a site), or one version of it, when the caller confirms."""

from __future__ import annotations

import anyio
from mcp_types import ToolAnnotations

from crawlrag.server.arguments import ArgumentError, clean_source
from crawlrag.server.runtime import ServerRuntime
from crawlrag.server.toolkit import ToolResult, ToolSet, add_tool, fail, ok
from crawlrag.sources.deletion import delete, plan_delete

# Deleting removes what no other call brings back short of crawling again; deleting twice leaves the same state.
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)


def register_delete_tools(tools: ToolSet, runtime: ServerRuntime) -> None:
    @add_tool(tools, runtime, title="Delete a source", annotations=DESTRUCTIVE)
    async def delete_source(source: str, version: str | None = None, confirm: bool = False) -> ToolResult:
        """Delete a crawled source (a site, as get_available_sources names it) or one version of it: its pages,
        chunks, code examples and vectors, in one transaction. Other versions stay.

        Refused unless `confirm` is true: without it the answer lists what would be deleted. The result counts
        what was removed per version.
        """
        site = clean_source(source)
        if site is None:
            raise ArgumentError("source must name a source; get_available_sources lists them")
        store = runtime.context.store
        plan = await anyio.to_thread.run_sync(plan_delete, store, site, clean_source(version))
        if confirm is not True:
            return fail(
                "delete_source removes what is listed under would_delete and cannot be undone: call it again with "
                "confirm=true to delete",
                would_delete=plan.to_dict(),
            )
        report = await anyio.to_thread.run_sync(delete, store, plan)
        return ok(**report.to_dict())
