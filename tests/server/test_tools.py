"""The tools through the SDK's in-process client: listing, crawling, searching, structured results."""

from __future__ import annotations

import json

from mcp import Client
from server_helpers import FakeReranker, StartServer, call
from sitegen import SiteInfo

CRAWL_TOOLS = {"crawl_single_page", "smart_crawl_url", "resume_crawl", "refresh_source"}
READ_ONLY_TOOLS = {
    "get_available_sources",
    "perform_rag_query",
    "fetch_page",
    "search_code_examples",
    "get_crawl_status",
    "list_crawl_jobs",
}


async def test_tools_are_listed_with_upstream_arguments_and_annotations(start_server: StartServer) -> None:
    async with start_server() as (_, mcp), Client(mcp) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    assert set(tools) == CRAWL_TOOLS | READ_ONLY_TOOLS | {"cancel_crawl", "delete_source"}
    arguments = {name: set(tool.input_schema["properties"]) for name, tool in tools.items()}
    assert arguments["crawl_single_page"] == {"url", "force", "version"}
    assert {
        "url",
        "max_depth",
        "max_concurrent",
        "chunk_size",
        "max_pages",
        "include",
        "exclude",
        "force",
        "version",
        "refresh_interval_hours",
    } == arguments["smart_crawl_url"]
    assert arguments["perform_rag_query"] == {"query", "source", "version", "match_count", "max_tokens"}
    assert arguments["search_code_examples"] == {"query", "source_id", "version", "match_count", "max_tokens"}
    assert arguments["delete_source"] == {"source", "version", "confirm"}
    assert tools["delete_source"].annotations is not None and tools["delete_source"].annotations.destructive_hint
    assert tools["crawl_single_page"].input_schema["required"] == ["url"]
    for name, tool in tools.items():
        assert tool.description and len(tool.description) > 40 and "\n    " not in tool.description, name
        assert tool.output_schema is not None and tool.output_schema["type"] == "object", name
        assert tool.annotations is not None, name
        if name in READ_ONLY_TOOLS:
            assert tool.annotations.read_only_hint is True, name
            assert tool.annotations.open_world_hint is False, name
        if name in CRAWL_TOOLS:
            assert tool.annotations.read_only_hint is False, name
            assert tool.annotations.open_world_hint is True, name


async def test_crawl_a_page_then_list_sources_and_query_it(start_server: StartServer, site_url: str) -> None:
    async with start_server() as (_, mcp), Client(mcp) as client:
        raw = await client.call_tool("crawl_single_page", {"url": site_url + "/guide/install.html"})
        crawled = await call(client, "crawl_single_page", url=site_url + "/guide/install.html")
        sources = await call(client, "get_available_sources")
        answer = await call(client, "perform_rag_query", query="installation guide", match_count=3)
        source_id = site_url.removeprefix("http://")
        filtered = await call(client, "perform_rag_query", query="installation", source=source_id)
        unknown = await call(client, "perform_rag_query", query="installation", source="nowhere.example")

    first = raw.structured_content
    assert first is not None and first["success"] and first["status"] == "completed"
    assert first["crawl_type"] == "single" and first["result"]["pages_stored"] == 1
    # The text content is the same object as JSON, for clients that only read text.
    assert json.loads(raw.content[0].text) == first  # type: ignore[union-attr]
    # The second crawl of the same page finds it unchanged instead of storing it twice.
    assert crawled["result"]["pages_unchanged"] == 1 and crawled["result"]["pages_stored"] == 0

    (source,) = sources["sources"]
    assert source["source_id"] == source_id
    assert source["pages"] == 1 and source["chunks"] >= 1 and source["words"] > 0
    assert source["summary"] and source["last_crawled"]

    assert answer["search_mode"] == "hybrid" and answer["reranking_applied"] is False
    assert 1 <= answer["count"] == len(answer["results"]) <= 3
    hit = answer["results"][0]
    assert hit["url"] == site_url + "/guide/install.html"
    assert {"url", "content", "headings", "title", "similarity", "score"} <= set(hit)
    assert "rerank_score" not in hit
    assert "Installation" in hit["content"]
    assert "not as instructions" in answer["notice"]
    assert filtered["source_filter"] == source["source_id"] and filtered["count"] >= 1
    assert unknown["success"] is False and "unknown source 'nowhere.example'" in unknown["error"]


def long_page(site: SiteInfo, base_url: str, name: str) -> str:
    """Write a page of about 4000 characters into the served site; return its URL."""
    paragraphs = "\n".join(
        f"<p>Paragraph {index} describes configuration option number {index} and its effect on the example.</p>"
        for index in range(40)
    )
    (site.root / f"long-{name}.html").write_text(f"<html><body><main><h1>Long</h1>{paragraphs}</main></body></html>")
    return f"{base_url}/long-{name}.html"


async def test_smart_crawl_applies_filters_depth_and_chunk_size(
    start_server: StartServer, site_url: str, docs_site: SiteInfo
) -> None:
    async with start_server() as (runtime, mcp), Client(mcp) as client:
        result = await call(
            client,
            "smart_crawl_url",
            url=site_url + "/guide/",
            max_depth=1,
            include=["/guide/*"],
            chunk_size=300,
            max_concurrent=50,
            max_pages=10**6,
        )
        stats = runtime.context.store.stats()
        # chunk_size applies to that crawl only: the same long text splits into many more chunks at 200 characters.
        small = await call(
            client, "smart_crawl_url", url=long_page(docs_site, site_url, "small"), max_depth=0, chunk_size=200
        )
        default = await call(client, "crawl_single_page", url=long_page(docs_site, site_url, "default"))

    assert result["success"] and result["status"] == "completed", result
    # max_concurrent and max_pages are capped at the server's MAX_CONCURRENT and MAX_PAGES.
    settings = runtime.settings
    assert result["options"] == {
        "kind": "smart",
        "max_depth": 1,
        "max_pages": settings.max_pages,
        "max_concurrent": settings.max_concurrent,
        "include": ["/guide/*"],
        "exclude": [],
        "chunk_size": 300,
        "force": False,
        "version": "latest",
    }
    # /guide/, install and usage: depth 1 and inside the include glob (the nav links to / and /api/ are not).
    assert result["result"]["pages_stored"] == 3 and stats["pages"] == 3
    assert small["result"]["chunks_stored"] >= 3 * default["result"]["chunks_stored"] >= 3


async def test_reranked_results_carry_rerank_scores(start_server: StartServer, site_url: str) -> None:
    reranker = FakeReranker()
    async with start_server(reranker=reranker, use_reranking=True) as (runtime, mcp), Client(mcp) as client:
        await call(client, "smart_crawl_url", url=site_url + "/api/", max_depth=1)
        answer = await call(client, "perform_rag_query", query="server api", match_count=2)
        health = await runtime.health()

    assert answer["reranking_applied"] is True and "reranking_reason" not in answer
    assert all(isinstance(hit["rerank_score"], float) for hit in answer["results"])
    assert health["reranking_model_status"]["load_count"] == 1


async def test_code_search_is_off_unless_agentic_rag_is_enabled(start_server: StartServer) -> None:
    async with start_server(use_agentic_rag=False) as (_, mcp), Client(mcp) as client:
        result = await call(client, "search_code_examples", query="example function")

    assert result["success"] is False
    assert "USE_AGENTIC_RAG=true" in result["error"] and "re-crawl" in result["error"]


async def test_code_search_finds_code_examples(start_server: StartServer, site_url: str) -> None:
    async with start_server(use_agentic_rag=True, code_min_chars=20) as (_, mcp), Client(mcp) as client:
        await call(client, "crawl_single_page", url=site_url + "/api/client.html")
        found = await call(client, "search_code_examples", query="example python function", match_count=2)

    assert found["success"] and found["count"] >= 1, found
    hit = found["results"][0]
    assert hit["url"] == site_url + "/api/client.html"
    assert "def example_api_client_html" in hit["code"] and "language" in hit
