"""How every tool answers: one JSON object with `success`, and `error` with a readable reason on failure.

The object is both the structured result and (as JSON text) the text content, for clients that read only text.
Failures set `isError`, so a model sees them as failed calls. Crawled text only ever appears inside data fields
(`results[].content`, `code`, `summary`); tool-level fields (`error`, `message`) are written by crawlrag.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult, TextContent, ToolAnnotations

from crawlrag.crawl import CrawlInputError
from crawlrag.embeddings import EmbeddingError
from crawlrag.pipeline.jobs import JobError
from crawlrag.search import SearchInputError
from crawlrag.server.arguments import ArgumentError
from crawlrag.server.output_schemas import OUTPUT_SCHEMAS
from crawlrag.server.runtime import NotStartedError, ServerRuntime
from crawlrag.server.schemas import Schema, input_schema, tool_properties
from crawlrag.store import StoreError

log = logging.getLogger(__name__)

# The return annotation of every tool: the tool keeps control of `isError`; the published output schema is the
# tool's own (output_schemas), set on registration.
ToolResult = Annotated[CallToolResult, dict[str, Any]]
ToolFunction = Callable[..., Awaitable[CallToolResult]]

# Errors whose message is written for the person calling the tool.
_EXPECTED = (ArgumentError, SearchInputError, CrawlInputError, JobError, StoreError, EmbeddingError, NotStartedError)

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
# Crawls write to the store and reach out to the web; re-running one leaves the same state (pages are replaced).
CRAWLS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True)
JOB_CONTROL = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def _result(payload: dict[str, Any], is_error: bool) -> CallToolResult:
    text = json.dumps(payload, ensure_ascii=False, indent=2, default=str)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=payload, is_error=is_error)


def ok(**fields: Any) -> CallToolResult:
    return _result({"success": True, **fields}, is_error=False)


def fail(error: str, **fields: Any) -> CallToolResult:
    return _result({"success": False, "error": error, **fields}, is_error=True)


class ToolSet:
    """The tools of one server, with the exact schemas they are published and checked with."""

    def __init__(self, runtime: ServerRuntime) -> None:
        self.runtime = runtime
        self.tools: list[Tool] = []
        self._properties = tool_properties(runtime.settings)

    @property
    def input_schemas(self) -> dict[str, Schema]:
        return {tool.name: tool.parameters for tool in self.tools}

    def add(self, fn: ToolFunction, call: ToolFunction, *, title: str, annotations: ToolAnnotations) -> None:
        name = fn.__name__
        description = inspect.cleandoc(fn.__doc__ or "")
        tool = Tool.from_function(call, name=name, title=title, description=description, annotations=annotations)
        tool.parameters = input_schema(fn, self._properties[name])
        # Published for clients; results are shaped by ok()/fail() and checked against it in the tests.
        tool.fn_metadata.output_schema = OUTPUT_SCHEMAS[name]
        self.tools.append(tool)


def add_tool(
    tools: ToolSet, runtime: ServerRuntime, *, title: str, annotations: ToolAnnotations
) -> Callable[[ToolFunction], ToolFunction]:
    """Register a tool with metrics and with expected errors turned into `fail(...)` results."""

    def register(fn: ToolFunction) -> ToolFunction:
        name = fn.__name__

        # functools.wraps keeps the signature the SDK builds its argument model from.
        @functools.wraps(fn)
        async def call(*args: Any, **kwargs: Any) -> CallToolResult:
            started = time.perf_counter()
            outcome = "cancelled"
            try:
                result = await fn(*args, **kwargs)
                outcome = "error" if result.is_error else "success"
                return result
            except _EXPECTED as exc:
                outcome = "error"
                # Errors may carry structured fields (the indexed versions of a refused one, ...).
                return fail(str(exc), **getattr(exc, "fields", {}))
            except Exception:
                outcome = "exception"
                log.exception("tool %s failed", name)
                return fail(f"{name} failed unexpectedly; the server log has the details")
            finally:
                if runtime.started:
                    runtime.metrics.tool_call(name, outcome, time.perf_counter() - started)

        tools.add(fn, call, title=title, annotations=annotations)
        return fn

    return register
