"""smart_crawl_url with a file:// URL: refused without ALLOWED_PATHS, indexed as a job with it."""

from __future__ import annotations

from pathlib import Path

from mcp import Client
from server_helpers import StartServer, call


async def test_smart_crawl_url_reads_a_file_url_under_allowed_paths(start_server: StartServer, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "intro.md").write_text("# Intro\n\nThe wombatical setting is documented here.\n")
    async with start_server() as (_runtime, mcp), Client(mcp) as client:
        refused = await call(client, "smart_crawl_url", url=docs.as_uri())
        assert not refused["success"] and "ALLOWED_PATHS" in refused["error"]
    async with start_server(allowed_paths=[str(tmp_path)]) as (_runtime, mcp), Client(mcp) as client:
        result = await call(client, "smart_crawl_url", url=docs.as_uri())
        assert result["success"] and result["status"] == "completed", result
        assert result["url"] == docs.as_uri() + "/" and result["result"]["sources"] == ["docs"]
        found = await call(client, "perform_rag_query", query="wombatical", source="docs")
    assert [hit["url"] for hit in found["results"]] == [(docs / "intro.md").as_uri()]
