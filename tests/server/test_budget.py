"""Answers within a token budget, results that fill match_count, and fetch_page, through the SDK client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import jsonschema
from budget_corpus import TOPICS, queries, write_corpus
from mcp import Client
from server_helpers import StartServer, call
from sitegen import serve_site

from crawlrag.config import DEFAULT_EMBEDDING_MODEL
from crawlrag.embeddings.local import resolve_model_path
from crawlrag.server.output_schemas import OUTPUT_SCHEMAS
from crawlrag.tokens import counter_for_model_dir

Caller = Callable[..., Any]


@asynccontextmanager
async def corpus(start_server: StartServer, tmp_path: Path) -> AsyncIterator[tuple[Client, str]]:
    """A started server with the budget corpus crawled, and the corpus's base URL."""
    write_corpus(tmp_path / "site")
    with serve_site(tmp_path / "site") as base_url:
        async with start_server(use_agentic_rag=True, code_min_chars=20) as (_, mcp), Client(mcp) as client:
            crawled = await call(client, "smart_crawl_url", url=base_url + "/index.html", max_depth=1)
            report = crawled["result"]
            # the site's home page is a list of links: an index page, followed but not stored as chunks
            assert crawled["success"] and report["pages_stored"] + report["pages_index"] == len(TOPICS) + 1, crawled
            yield client, base_url


def valid(tool: str, answer: dict[str, Any]) -> dict[str, Any]:
    jsonschema.validate(answer, OUTPUT_SCHEMAS[tool])
    return answer


async def test_answers_never_exceed_max_tokens(start_server: StartServer, tmp_path: Path) -> None:
    async with corpus(start_server, tmp_path) as (client, _):
        counter = counter_for_model_dir(resolve_model_path(DEFAULT_EMBEDDING_MODEL))
        assert counter.exact
        over, truncated = [], 0
        for query in queries(100):
            answer = valid("perform_rag_query", await call(client, "perform_rag_query", query=query, max_tokens=300))
            counted = sum(counter.count(hit["content"]) for hit in answer["results"])
            if answer["tokens"] > 300 or counted > 300 or counted != answer["tokens"] or not answer["results"]:
                over.append((query, answer["tokens"], counted))
            truncated += answer["truncated"]
        assert not over, over
        assert truncated > 0  # the budget really bit


async def test_match_count_is_filled_when_enough_pages_match(start_server: StartServer, tmp_path: Path) -> None:
    async with corpus(start_server, tmp_path) as (client, _):
        answer = valid(
            "perform_rag_query", await call(client, "perform_rag_query", query="configuration option", match_count=5)
        )
        assert answer["count"] == 5 and "note" not in answer
        sections = {(hit["url"], hit["headings"]) for hit in answer["results"]}
        assert len(sections) == 5


async def test_a_generous_budget_widens_hits_to_their_section(start_server: StartServer, tmp_path: Path) -> None:
    # The caching page's "limits" section (five paragraphs and code) spans more than one chunk.
    async with corpus(start_server, tmp_path) as (client, _):
        answer = valid(
            "perform_rag_query",
            await call(client, "perform_rag_query", query="caching limits timeout", match_count=2, max_tokens=20000),
        )
        assert answer["truncated"] is False
        assert any(hit["expanded"] for hit in answer["results"]), answer["results"]
        for hit in answer["results"]:
            # A code block is never cut: every fence that opens closes.
            assert hit["content"].count("```") % 2 == 0


async def test_code_search_keeps_code_blocks_whole(start_server: StartServer, tmp_path: Path) -> None:
    async with corpus(start_server, tmp_path) as (client, _):
        answer = valid(
            "search_code_examples",
            await call(client, "search_code_examples", query="configure caching", match_count=3, max_tokens=100),
        )
        assert answer["tokens"] <= 100
        assert all(hit["code"].count("def configure_") == 1 for hit in answer["results"])


async def test_fetch_page_returns_a_page_a_section_and_parts(start_server: StartServer, tmp_path: Path) -> None:
    async with corpus(start_server, tmp_path) as (client, base_url):
        url = base_url + "/routing.html"
        whole = valid("fetch_page", await call(client, "fetch_page", url=url, max_tokens=100000))
        section = valid("fetch_page", await call(client, "fetch_page", url=url, section="Routing limits"))
        first = valid("fetch_page", await call(client, "fetch_page", url=url, max_tokens=150))
        parts = [first] + [
            valid("fetch_page", await call(client, "fetch_page", url=url, max_tokens=150, part=number))
            for number in range(2, first["parts"] + 1)
        ]
        missing = valid("fetch_page", await call(client, "fetch_page", url=base_url + "/nowhere.html"))
        no_section = valid("fetch_page", await call(client, "fetch_page", url=url, section="Nope"))

        assert whole["parts"] == 1 and whole["truncated"] is False and "Routing guide" in whole["markdown"]
        assert section["section"] and section["section"].endswith("## Routing limits")
        assert "Routing limits" in section["markdown"] and "Routing setup" not in section["markdown"]
        assert first["parts"] > 1 and first["next_part"] == 2 and first["truncated"] is True
        assert all(part["tokens"] <= 150 for part in parts)
        assert "configure_routing_limits" in parts[-1]["markdown"] and "next_part" not in parts[-1]
        assert missing["success"] is False and "crawl_single_page" in missing["error"]
        assert no_section["success"] is False and "## Routing limits" in no_section["error"]
