"""docs/clients.md's tool reference is generated from the published schemas and must be up to date."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import jsonschema

from crawlrag.config import Settings
from crawlrag.server.runtime import ServerRuntime

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "tool_reference.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tool_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["tool_reference"] = module
    spec.loader.exec_module(module)
    return module


def test_the_tool_reference_in_docs_is_up_to_date() -> None:
    script = load_script()
    document = script.DOC.read_text(encoding="utf-8")
    assert script.updated(document, script.render()) == document, "run: python scripts/tool_reference.py"


async def test_every_documented_example_is_valid() -> None:
    from crawlrag.server.app import build_mcp_server

    script = load_script()
    settings = Settings(_env_file=None, database_url="sqlite:///unused.db")  # type: ignore[call-arg]
    tools = await build_mcp_server(ServerRuntime(settings)).list_tools()
    assert set(script.EXAMPLES) == {tool.name for tool in tools}
    for tool in tools:
        jsonschema.validate(script.EXAMPLES[tool.name], tool.input_schema)
