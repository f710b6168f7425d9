"""The exact input schema of every tool: JSON Schema built from the bounds the settings and the CLI use.

The schema is what `tools/list` publishes and what `validation` checks a call against before the tool runs, so a
client sees the same rules that are enforced. Defaults come from the tool function's signature (or, for values
that a setting decides, from the settings), so the published default is the one applied.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from mcp.server.mcpserver import Context

from crawlrag.config import Settings
from crawlrag.crawl.urls import MAX_URL_CHARS
from crawlrag.limits import JOB_LIST_RANGE, MAX_RESULT_TOKENS, MAX_SECTION_CHARS, MAX_SOURCE_CHARS, MIN_RESULT_TOKENS
from crawlrag.pipeline.bounds import CHUNK_SIZE_RANGE, CONCURRENCY_RANGE, DEPTH_RANGE, PAGES_RANGE, REFRESH_HOURS_RANGE
from crawlrag.pipeline.options import MAX_PATTERN_CHARS, MAX_PATTERNS
from crawlrag.server.arguments import JOB_ID_PATTERN
from crawlrag.sources.versions import MAX_VERSION_CHARS

Schema = dict[str, Any]

# What check_version accepts (crawlrag.sources.versions); the schema shows it so a client sees the rule before calling.
VERSION_PATTERN = r"^\s*[A-Za-z0-9]([A-Za-z0-9._+-]*[A-Za-z0-9])?\s*$"
# What a pattern means, for error messages (a regular expression is not an explanation).
PATTERN_MEANINGS = {
    JOB_ID_PATTERN: "the id a crawl tool returned (letters, digits, '-' and '_')",
    VERSION_PATTERN: "a version: letters, digits, '.', '_', '+' and '-', e.g. 2.1, v3 or latest",
}


def integer(low: int, high: int, description: str, *, nullable: bool = False) -> Schema:
    return {"type": ["integer", "null"] if nullable else "integer", "minimum": low, "maximum": high} | {
        "description": description
    }


def string(description: str, *, max_length: int, nullable: bool = False, **extra: Any) -> Schema:
    return {"type": ["string", "null"] if nullable else "string", "minLength": 1, "maxLength": max_length} | (
        extra | {"description": description}
    )


def globs(description: str) -> Schema:
    return {
        "type": ["array", "null"],
        "items": {"type": "string", "minLength": 1, "maxLength": MAX_PATTERN_CHARS},
        "maxItems": MAX_PATTERNS,
        "description": description,
    }


def _url(description: str) -> Schema:
    return string(description, max_length=MAX_URL_CHARS, format="uri")


def _force() -> Schema:
    return {"type": "boolean", "description": "Store every page again even when it is unchanged since the last crawl"}


def _job_id() -> Schema:
    return string("The job_id a crawl tool returned (see list_crawl_jobs)", max_length=64, pattern=JOB_ID_PATTERN)


def _version(description: str) -> Schema:
    return string(description, max_length=MAX_VERSION_CHARS, nullable=True, pattern=VERSION_PATTERN)


def _crawl_version() -> Schema:
    return _version(
        "The site's version to file the pages under, e.g. 2.1 (default: read from the URL's path, like /3.11/ or "
        "/en/stable/, else latest)"
    )


def _search(settings: Settings, source_name: str) -> dict[str, Schema]:
    return {
        "query": string(
            f"What to look for, in words or identifiers (at most {settings.max_query_chars} characters)",
            max_length=settings.max_query_chars,
        ),
        source_name: string(
            "Only search this source id (see get_available_sources); omit for all sources",
            max_length=MAX_SOURCE_CHARS,
            nullable=True,
        ),
        "version": _version(
            "Only this indexed version of the source (needs the source); omit for each source's newest version"
        ),
        "match_count": integer(1, settings.max_match_count, "Number of results (distinct pages or sections)"),
        "max_tokens": _max_tokens(settings, "Token budget of the whole answer's text"),
    }


def _max_tokens(settings: Settings, description: str) -> Schema:
    schema = integer(MIN_RESULT_TOKENS, MAX_RESULT_TOKENS, f"{description}, in the embedding model's tokens")
    return schema | {"default": settings.max_result_tokens}


def tool_properties(settings: Settings) -> dict[str, dict[str, Schema]]:
    """Every tool's argument schemas, by tool name."""
    chunks_low, chunks_high = CHUNK_SIZE_RANGE
    pages_low, pages_high = PAGES_RANGE
    jobs_low, jobs_high = JOB_LIST_RANGE
    return {
        "get_available_sources": {},
        "perform_rag_query": _search(settings, "source"),
        "search_code_examples": _search(settings, "source_id"),
        "fetch_page": {
            "url": _url("URL of a crawled page (as in search results)"),
            "section": string(
                "Only this section: a heading's text, or a heading path as in results' `headings`",
                max_length=MAX_SECTION_CHARS,
                nullable=True,
            ),
            "part": integer(1, 10_000, "Which part of a page too long for max_tokens (see `parts` in the answer)"),
            "max_tokens": _max_tokens(settings, "Token budget of the returned markdown"),
        },
        "crawl_single_page": {
            "url": _url("URL of the page, http:// or https://"),
            "force": _force(),
            "version": _crawl_version(),
        },
        "smart_crawl_url": {
            "url": _url("Start URL (a page, a sitemap.xml or an llms.txt), http:// or https://"),
            "max_depth": integer(
                DEPTH_RANGE[0],
                DEPTH_RANGE[1],
                f"Link depth to follow from the start page (0: this page only; null: MAX_DEPTH, {settings.max_depth})",
                nullable=True,
            )
            | {"default": settings.max_depth},
            "max_concurrent": integer(
                CONCURRENCY_RANGE[0],
                CONCURRENCY_RANGE[1],
                f"Pages fetched at once (null and cap: MAX_CONCURRENT, {settings.max_concurrent})",
                nullable=True,
            )
            | {"default": settings.max_concurrent},
            "chunk_size": integer(
                chunks_low,
                chunks_high,
                f"Characters per chunk for this crawl (null: CHUNK_SIZE, {settings.chunk_size})",
                nullable=True,
            ),
            "max_pages": integer(
                pages_low,
                pages_high,
                f"Stop after this many pages (null and cap: MAX_PAGES, {settings.max_pages})",
                nullable=True,
            ),
            "include": globs('Only crawl URLs matching one of these globs, e.g. ["*/docs/*"]'),
            "exclude": globs('Skip URLs matching any of these globs, e.g. ["*/blog/*"]'),
            "force": _force(),
            "version": _crawl_version(),
            "refresh_interval_hours": {
                "type": ["number", "null"],
                "minimum": REFRESH_HOURS_RANGE[0],
                "maximum": REFRESH_HOURS_RANGE[1],
                "description": "Hours between refreshes of this source by the server (0: never; null: keep the "
                "source's interval, else REFRESH_INTERVAL_HOURS)",
            },
        },
        "delete_source": {
            "source": string(
                "The source (site) to delete, as get_available_sources lists it", max_length=MAX_SOURCE_CHARS
            ),
            "version": _version("Only this version of it (default: every version)"),
            "confirm": {"type": "boolean", "description": "Must be true: deleting cannot be undone"},
        },
        "refresh_source": {
            "source": string(
                "The source (site) to refresh, as get_available_sources lists it; omit for every source",
                max_length=MAX_SOURCE_CHARS,
                nullable=True,
            ),
            "version": _version("Only this version of it (default: every version)"),
        },
        "get_crawl_status": {"job_id": _job_id()},
        "list_crawl_jobs": {"limit": integer(jobs_low, jobs_high, "How many jobs to list, newest first")},
        "cancel_crawl": {"job_id": _job_id()},
        "resume_crawl": {"job_id": _job_id()},
    }


def input_schema(fn: Callable[..., Any], properties: Mapping[str, Schema]) -> Schema:
    """The object schema of `fn`'s arguments: `properties` must name exactly its parameters (besides the
    context); parameters without a default are required, and defaults other than None are published."""
    parameters = {
        name: parameter
        for name, parameter in inspect.signature(fn, eval_str=True).parameters.items()
        if parameter.annotation is not Context
    }
    if set(parameters) != set(properties):
        raise ValueError(f"schema of {fn.__name__} names {sorted(properties)}, the function takes {sorted(parameters)}")
    published: dict[str, Schema] = {}
    for name, parameter in parameters.items():
        spec = dict(properties[name])
        if parameter.default is not inspect.Parameter.empty and parameter.default is not None:
            spec["default"] = parameter.default
        published[name] = spec
    required = [name for name, parameter in parameters.items() if parameter.default is inspect.Parameter.empty]
    schema: Schema = {"type": "object", "properties": published, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema
