"""Versions through the MCP tools (the SDK's in-process client), on SQLite and PostgreSQL: a site with versions
1.0 and 2.0 at different paths of one host is searched version by version, an unknown version is refused with
the indexed ones, a search without a version reads 2.0, and deleting 1.0 leaves 2.0 intact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
from mcp import Client
from server_helpers import StartServer, call
from version_site import serve_versions


def _checked(tools: dict[str, Any], name: str, answer: dict[str, Any]) -> dict[str, Any]:
    jsonschema.validate(answer, tools[name].output_schema)
    return answer


async def test_versions_are_searched_apart_refused_when_unknown_and_deleted_one_by_one(
    start_server: StartServer, database_url: str, tmp_path: Path
) -> None:
    with serve_versions(tmp_path / "site") as base:
        site = base.removeprefix("http://")
        async with start_server(database_url=database_url) as (_, mcp), Client(mcp) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}

            async def tool(name: str, **arguments: Any) -> dict[str, Any]:
                return _checked(tools, name, await call(client, name, **arguments))

            one = await tool("smart_crawl_url", url=f"{base}/docs/1.0/", max_depth=3)
            two = await tool("smart_crawl_url", url=f"{base}/docs/2.0/index.html", max_depth=3, version="2.0")
            assert one["success"] and two["success"], (one, two)
            assert one["options"]["version"] == "1.0" and two["options"]["version"] == "2.0"

            [source] = (await tool("get_available_sources"))["sources"]
            assert (source["source_id"], source["default_version"]) == (site, "2.0")
            # The version switcher's links and /shared.html are outside each version's path: not crawled.
            assert [(v["version"], v["pages"]) for v in source["versions"]] == [("2.0", 3), ("1.0", 3)]
            assert source["pages"] == 6 and source["last_crawled"] is not None

            old = await tool("perform_rag_query", query="install from a source checkout", source=site, version="1.0")
            assert old["success"] and old["versions"] == {site: "1.0"} and old["results"]
            assert {r["version"] for r in old["results"]} == {"1.0"}
            assert all("/docs/1.0/" in r["url"] and r["indexed_at"] for r in old["results"])
            assert "setup.py develop" in old["results"][0]["content"]

            new = await tool("perform_rag_query", query="install from a source checkout", source=site, version="2.0")
            assert {r["version"] for r in new["results"]} == {"2.0"}
            assert all("/docs/2.0/" in r["url"] for r in new["results"])

            default = await tool("perform_rag_query", query="configuration file", source=site)
            assert default["versions"] == {site: "2.0"}
            assert {r["version"] for r in default["results"]} == {"2.0"}
            unscoped = await tool("perform_rag_query", query="legacy.ini")
            assert unscoped["versions"] == {site: "2.0"}
            assert all("legacy.ini" not in r["content"] for r in unscoped["results"])

            unknown = await tool("perform_rag_query", query="install", source=site, version="3.0")
            assert unknown["success"] is False
            assert unknown["indexed_versions"] == ["2.0", "1.0"] and "2.0, 1.0" in unknown["error"]
            alone = await tool("perform_rag_query", query="install", version="1.0")
            assert alone["success"] is False and "needs a source" in alone["error"]
            bad = await client.call_tool("perform_rag_query", {"query": "install", "source": site, "version": "1/0"})
            assert bad.is_error

            # The same URL crawled as 1.0 and as 2.0 is two pages.
            for version in ("1.0", "2.0"):
                shared = await tool("crawl_single_page", url=f"{base}/shared.html", version=version)
                assert shared["success"], shared
            [source] = (await tool("get_available_sources"))["sources"]
            assert [(v["version"], v["pages"]) for v in source["versions"]] == [("2.0", 4), ("1.0", 4)]
            community = await tool("perform_rag_query", query="community", source=site, version="1.0")
            shared_hits = [r for r in community["results"] if r["url"] == f"{base}/shared.html"]
            assert [r["version"] for r in shared_hits] == ["1.0"]

            assert tools["delete_source"].annotations.destructive_hint is True
            refused = await tool("delete_source", source=site, version="1.0")
            assert refused["success"] is False and "confirm=true" in refused["error"]
            assert refused["would_delete"]["versions"][0]["version"] == "1.0"
            assert len((await tool("get_available_sources"))["sources"][0]["versions"]) == 2

            deleted = await tool("delete_source", source=site, version="1.0", confirm=True)
            assert deleted["success"] and deleted["remaining_versions"] == ["2.0"]
            [counts] = deleted["deleted"]
            assert (counts["version"], counts["pages"]) == ("1.0", 4) and counts["chunks"] >= 4

            gone = await tool("perform_rag_query", query="install", source=site, version="1.0")
            assert gone["success"] is False and gone["indexed_versions"] == ["2.0"]
            kept = await tool("perform_rag_query", query="install with pip", source=site, version="2.0")
            assert kept["results"] and {r["version"] for r in kept["results"]} == {"2.0"}
            [source] = (await tool("get_available_sources"))["sources"]
            assert [(v["version"], v["pages"]) for v in source["versions"]] == [("2.0", 4)]

            missing = await tool("delete_source", source=site, version="1.0", confirm=True)
            assert missing["success"] is False and missing["indexed_versions"] == ["2.0"]
            everything = await tool("delete_source", source=site, confirm=True)
            assert [c["version"] for c in everything["deleted"]] == ["2.0"]
            assert (await tool("get_available_sources"))["sources"] == []
