"""Bad arguments for every tool: a clear error in the result, and nothing crawled, recorded or stored."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from server_helpers import StartServer, call

BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ("crawl_single_page", {"url": "file:///etc/passwd"}, "ALLOWED_PATHS"),  # local files: none by default
    ("crawl_single_page", {"url": ""}, "url must be a non-empty"),
    ("crawl_single_page", {"url": "   "}, "url must be a non-empty"),
    ("crawl_single_page", {"url": "javascript:alert(1)"}, "only http:// and https://"),
    ("crawl_single_page", {"url": "docs.example.com/page"}, "only http:// and https://"),
    ("crawl_single_page", {"url": "http://user:secret@example.com/"}, "credentials"),
    ("crawl_single_page", {"url": "http:///no-host"}, "no host"),
    ("crawl_single_page", {"url": "https://example.com/" + "a" * 3000}, "the limit is 2048"),
    ("smart_crawl_url", {"url": "ftp://example.com/"}, "only http:// and https://"),
    ("smart_crawl_url", {"url": "https://example.com/", "max_depth": -1}, "max_depth must be between 0 and 50"),
    ("smart_crawl_url", {"url": "https://example.com/", "max_depth": 51}, "max_depth must be between 0 and 50"),
    ("smart_crawl_url", {"url": "https://example.com/", "max_pages": 0}, "max_pages must be between 1"),
    ("smart_crawl_url", {"url": "https://example.com/", "max_concurrent": 0}, "max_concurrent must be between 1"),
    ("smart_crawl_url", {"url": "https://example.com/", "chunk_size": 10}, "chunk_size must be between 200"),
    ("smart_crawl_url", {"url": "https://example.com/", "include": [""]}, "include[0] must be a non-empty string"),
    ("smart_crawl_url", {"url": "https://example.com/", "exclude": ["*"] * 51}, "the limit is 50"),
    ("smart_crawl_url", {"url": "https://example.com/", "version": "1/0"}, "version must be a version"),
    ("crawl_single_page", {"url": "https://example.com/", "version": "x" * 65}, "the limit is 64"),
    ("perform_rag_query", {"query": ""}, "query must be a non-empty string"),
    ("perform_rag_query", {"query": "   "}, "query must be a non-empty string"),
    ("perform_rag_query", {"query": "x" * 2001}, "the limit is 2000"),
    ("perform_rag_query", {"query": "install", "match_count": 0}, "match_count must be between 1 and 50"),
    ("perform_rag_query", {"query": "install", "match_count": -1}, "match_count must be between 1 and 50"),
    ("perform_rag_query", {"query": "install", "match_count": 10**9}, "match_count must be between 1 and 50"),
    ("perform_rag_query", {"query": "install", "source": "unknown.example"}, "unknown source"),
    ("perform_rag_query", {"query": "install", "version": "2.0"}, "a version needs a source"),
    ("perform_rag_query", {"query": "install", "source": "a", "version": "-2"}, "version must be a version"),
    ("search_code_examples", {"query": ""}, "query must be a non-empty string"),
    ("search_code_examples", {"query": "def", "match_count": 0}, "match_count must be between 1 and 50"),
    ("search_code_examples", {"query": "def", "source_id": "unknown.example"}, "unknown source"),
    ("get_crawl_status", {"job_id": "0123456789abcdef"}, "no crawl job with id '0123456789abcdef'"),
    ("get_crawl_status", {"job_id": "../../etc/passwd"}, "job_id must be the id a crawl tool returned"),
    ("get_crawl_status", {"job_id": ""}, "job_id must be a non-empty string"),
    ("cancel_crawl", {"job_id": "0123456789abcdef"}, "no crawl job with id"),
    ("resume_crawl", {"job_id": "0123456789abcdef"}, "no crawl job with id"),
    ("list_crawl_jobs", {"limit": 0}, "limit must be between 1 and 200"),
    ("delete_source", {"source": "unknown.example", "confirm": True}, "unknown source 'unknown.example'"),
    ("delete_source", {"source": ""}, "source must be a non-empty string"),
    ("refresh_source", {"source": "unknown.example"}, "unknown source 'unknown.example'"),
    ("refresh_source", {"version": "2.0"}, "a version can only be refreshed with its source"),
    (
        "fetch_page",
        {"url": "https://example.com/not-crawled"},
        "not in the index; crawl it first with crawl_single_page",
    ),
    ("fetch_page", {"url": "https://example.com/", "max_tokens": 10}, "max_tokens must be between 100 and 100000"),
]


async def test_bad_arguments_give_clear_errors_and_store_nothing(start_server: StartServer) -> None:
    failures = []
    async with start_server(use_agentic_rag=True) as (runtime, mcp), Client(mcp) as client:
        for tool, arguments, expected in BAD_CALLS:
            result = await call(client, tool, **arguments)
            if result["success"] is not False or expected not in result["error"]:
                failures.append((tool, arguments, result))
        jobs = await call(client, "list_crawl_jobs")
        stats = runtime.context.store.stats()

    assert not failures, failures
    assert jobs["count"] == 0 and jobs["running"] == jobs["queued"] == 0
    assert stats["sources"] == stats["pages"] == stats["chunks"] == 0
    # Every tool is covered.
    assert {tool for tool, _, _ in BAD_CALLS} == {tool.name for tool in await mcp.list_tools()} - {
        "get_available_sources"
    }


@pytest.mark.parametrize(
    ("tool", "arguments", "argument", "rule", "expected"),
    [
        ("perform_rag_query", {"query": "install", "match_count": "abc"}, "match_count", "type", "a whole number"),
        ("perform_rag_query", {"query": "install", "match_count": "5"}, "match_count", "type", "a whole number"),
        ("perform_rag_query", {"query": "install", "match_count": 2.5}, "match_count", "type", "a whole number"),
        ("perform_rag_query", {"query": "install", "match_count": True}, "match_count", "type", "a whole number"),
        ("perform_rag_query", {}, "query", "required", "query is required"),
        ("perform_rag_query", {"query": "install", "limit": 3}, "limit", "additionalProperties", "unknown argument"),
        ("smart_crawl_url", {"url": "https://example.com/", "max_depth": "deep"}, "max_depth", "type", "whole number"),
        ("smart_crawl_url", {"url": "https://example.com/", "include": "*/docs/*"}, "include", "type", "a list"),
        ("crawl_single_page", {}, "url", "required", "url is required"),
        ("crawl_single_page", {"url": "https://example.com/", "force": "yes"}, "force", "type", "true or false"),
        ("get_crawl_status", {"job_id": 5}, "job_id", "type", "a string"),
    ],
)
async def test_arguments_the_schema_refuses_get_the_tools_error_shape(
    start_server: StartServer, tool: str, arguments: dict[str, Any], argument: str, rule: str, expected: str
) -> None:
    async with start_server() as (runtime, mcp), Client(mcp) as client:
        result = await client.call_tool(tool, arguments)
        metrics = runtime.metrics.tool_calls.labels(tool, "invalid")._value.get()

    assert result.is_error and result.structured_content is not None
    assert result.structured_content["success"] is False
    assert result.structured_content["argument"] == argument and result.structured_content["rule"] == rule
    assert expected in result.structured_content["error"]
    assert "pydantic" not in result.structured_content["error"]
    assert metrics == 1
