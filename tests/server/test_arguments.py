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
    ("smart_crawl_url", {"url": "https://example.com/", "include": [""]}, "include entries must be non-empty"),
    ("smart_crawl_url", {"url": "https://example.com/", "exclude": ["*"] * 51}, "the limit is 50"),
    ("perform_rag_query", {"query": ""}, "query must be a non-empty string"),
    ("perform_rag_query", {"query": "   "}, "query must be a non-empty string"),
    ("perform_rag_query", {"query": "x" * 2001}, "MAX_QUERY_CHARS"),
    ("perform_rag_query", {"query": "install", "match_count": 0}, "match_count must be between 1 and 50"),
    ("perform_rag_query", {"query": "install", "match_count": -1}, "match_count must be between 1 and 50"),
    ("perform_rag_query", {"query": "install", "match_count": 10**9}, "match_count must be between 1 and 50"),
    ("perform_rag_query", {"query": "install", "source": "unknown.example"}, "unknown source"),
    ("search_code_examples", {"query": ""}, "query must be a non-empty string"),
    ("search_code_examples", {"query": "def", "match_count": 0}, "match_count must be between 1 and 50"),
    ("search_code_examples", {"query": "def", "source_id": "unknown.example"}, "unknown source"),
    ("get_crawl_status", {"job_id": "0123456789abcdef"}, "no crawl job with id '0123456789abcdef'"),
    ("get_crawl_status", {"job_id": "../../etc/passwd"}, "job_id must be the id a crawl tool returned"),
    ("get_crawl_status", {"job_id": ""}, "job_id must be the id a crawl tool returned"),
    ("cancel_crawl", {"job_id": "0123456789abcdef"}, "no crawl job with id"),
    ("resume_crawl", {"job_id": "0123456789abcdef"}, "no crawl job with id"),
    ("list_crawl_jobs", {"limit": 0}, "limit must be between 1 and 200"),
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
    ("tool", "arguments", "field"),
    [
        ("perform_rag_query", {"query": "install", "match_count": "many"}, "match_count"),
        ("smart_crawl_url", {"url": "https://example.com/", "max_depth": "deep"}, "max_depth"),
        ("crawl_single_page", {}, "url"),
    ],
)
async def test_arguments_of_the_wrong_type_are_rejected_by_the_schema(
    start_server: StartServer, tool: str, arguments: dict[str, Any], field: str
) -> None:
    async with start_server() as (_, mcp), Client(mcp) as client:
        result = await client.call_tool(tool, arguments)

    assert result.is_error
    assert field in result.content[0].text  # type: ignore[union-attr]
