"""Published schemas: exact input bounds for every tool, and every result and error valid against its output schema."""

from __future__ import annotations

from typing import Any

import jsonschema
from mcp import Client
from server_helpers import StartServer, call
from test_arguments import BAD_CALLS

from crawlrag.pipeline.bounds import DEPTH_RANGE


def walk(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object schema inside `schema`."""
    found = [schema] if schema.get("type") == "object" or "properties" in schema else []
    for value in schema.values():
        children = value if isinstance(value, list) else value.values() if isinstance(value, dict) else ()
        for child in children:
            if isinstance(child, dict):
                found.extend(walk(child))
    return found


async def test_input_schemas_are_exact(start_server: StartServer) -> None:
    async with start_server() as (runtime, mcp), Client(mcp) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    settings = runtime.settings
    for name, tool in tools.items():
        schema = tool.input_schema
        assert schema["type"] == "object" and schema["additionalProperties"] is False, name
        jsonschema.Draft202012Validator.check_schema(schema)
        for argument, spec in schema["properties"].items():
            kinds = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
            assert spec.get("description"), (name, argument)
            if "integer" in kinds:
                assert "minimum" in spec and "maximum" in spec, (name, argument)
            if "string" in kinds:
                assert "maxLength" in spec and spec["minLength"] == 1, (name, argument)
    query = tools["perform_rag_query"].input_schema["properties"]
    assert query["match_count"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": settings.max_match_count,
        "description": query["match_count"]["description"],
        "default": 5,
    }
    assert query["query"]["maxLength"] == settings.max_query_chars
    assert query["max_tokens"]["default"] == settings.max_result_tokens == 4000
    crawl = tools["smart_crawl_url"].input_schema
    assert crawl["required"] == ["url"]
    assert (
        crawl["properties"]["max_depth"]["maximum"] == DEPTH_RANGE[1]
        and crawl["properties"]["max_depth"]["default"] == 3
    )
    assert crawl["properties"]["force"] == {
        "type": "boolean",
        "description": crawl["properties"]["force"]["description"],
        "default": False,
    }
    assert crawl["properties"]["include"]["maxItems"] == 50
    assert tools["get_crawl_status"].input_schema["properties"]["job_id"]["pattern"] == r"^[A-Za-z0-9_-]{1,64}$"
    for name, tool in tools.items():
        assert tool.output_schema is not None and tool.output_schema["type"] == "object", name
        assert tool.output_schema != {"type": "object", "additionalProperties": True}, name
        jsonschema.Draft202012Validator.check_schema(tool.output_schema)


def check(tools: dict[str, Any], tool: str, answer: dict[str, Any]) -> None:
    jsonschema.validate(answer, tools[tool].output_schema)


async def test_every_result_and_error_matches_its_output_schema(start_server: StartServer, site_url: str) -> None:
    async with start_server(use_agentic_rag=True, code_min_chars=20) as (_, mcp), Client(mcp) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        answers: list[tuple[str, dict[str, Any]]] = []

        async def run(tool: str, **arguments: Any) -> dict[str, Any]:
            answer = await call(client, tool, **arguments)
            answers.append((tool, answer))
            return answer

        crawled = await run("smart_crawl_url", url=site_url + "/api/", max_depth=1)
        await run("crawl_single_page", url=site_url + "/guide/install.html")
        await run("get_available_sources")
        await run("perform_rag_query", query="installation", match_count=3)
        await run("search_code_examples", query="example function")
        await run("fetch_page", url=site_url + "/guide/install.html")
        await run("get_crawl_status", job_id=crawled["job_id"])
        await run("list_crawl_jobs")
        await run("resume_crawl", job_id=crawled["job_id"])
        await run("refresh_source", source=site_url.removeprefix("http://"))
        await run("refresh_source", source="nowhere.example")
        for tool, arguments, _ in BAD_CALLS:
            await run(tool, **arguments)
        await run("perform_rag_query", query="x", match_count="abc")
        await run("smart_crawl_url", url=site_url + "/", surprise=1)

    assert crawled["success"], crawled
    assert {tool for tool, _ in answers} == set(tools)
    for tool, answer in answers:
        check(tools, tool, answer)
