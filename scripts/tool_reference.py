"""Write the tool reference of docs/clients.md from the tools' published schemas (one source of truth).

python scripts/tool_reference.py          # rewrite the section between the markers
python scripts/tool_reference.py --check  # exit 1 when the document is out of date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio

from crawlrag.config import Settings
from crawlrag.server.app import build_mcp_server
from crawlrag.server.runtime import ServerRuntime

DOC = Path(__file__).resolve().parent.parent / "docs" / "clients.md"
START, END = "<!-- tool-reference:start -->", "<!-- tool-reference:end -->"
# One call per tool, shown as the `arguments` of a tools/call request (checked against the schema by the test).
EXAMPLES: dict[str, dict[str, Any]] = {
    "get_available_sources": {},
    "perform_rag_query": {"query": "how do I paginate results", "source": "docs.example.com", "version": "2.1"},
    "search_code_examples": {"query": "retry with exponential backoff", "match_count": 3},
    "fetch_page": {"url": "https://docs.example.com/guide/install.html", "section": "Installing from source"},
    "crawl_single_page": {"url": "https://docs.example.com/changelog.html"},
    "smart_crawl_url": {"url": "https://docs.example.com/", "max_depth": 2, "include": ["*/guide/*"]},
    "get_crawl_status": {"job_id": "3f2a9c0d1e4b4f6a8b7c6d5e4f3a2b1c"},
    "list_crawl_jobs": {"limit": 5},
    "cancel_crawl": {"job_id": "3f2a9c0d1e4b4f6a8b7c6d5e4f3a2b1c"},
    "resume_crawl": {"job_id": "3f2a9c0d1e4b4f6a8b7c6d5e4f3a2b1c"},
    "delete_source": {"source": "docs.example.com", "version": "1.0", "confirm": True},
    "refresh_source": {"source": "docs.example.com"},
}


def _type(spec: dict[str, Any]) -> str:
    kinds = spec.get("type", "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    words = [f"{kind} of {spec['items']['type']}" if kind == "array" else kind for kind in kinds]
    return " or ".join(words)


def _rules(spec: dict[str, Any]) -> str:
    rules = []
    if "minimum" in spec:
        rules.append(f"{spec['minimum']}–{spec['maximum']}")
    if "maxLength" in spec:
        rules.append(f"≤ {spec['maxLength']} chars")
    if "maxItems" in spec:
        rules.append(f"≤ {spec['maxItems']} items of ≤ {spec['items']['maxLength']} chars")
    if "pattern" in spec:
        rules.append(f"`{spec['pattern']}`")
    return ", ".join(rules)


def _success_fields(output: dict[str, Any]) -> list[str]:
    success = next(option for option in output["oneOf"] if option["properties"]["success"] == {"const": True})
    return [f"`{name}`" for name in success["properties"] if name != "success"]


def render_tool(tool: Any) -> str:
    hints = tool.annotations
    kind = "read-only" if hints and hints.read_only_hint else "writes to the index"
    lines = [f"### `{tool.name}` — {tool.title} ({kind})", "", tool.description, ""]
    properties = tool.input_schema.get("properties", {})
    if properties:
        required = set(tool.input_schema.get("required", []))
        lines += ["| argument | type | default | bounds | meaning |", "|---|---|---|---|---|"]
        for name, spec in properties.items():
            default = "required" if name in required else f"`{spec['default']}`" if "default" in spec else "null"
            lines.append(f"| `{name}` | {_type(spec)} | {default} | {_rules(spec)} | {spec.get('description', '')} |")
        lines.append("")
    else:
        lines += ["No arguments.", ""]
    lines += [f"Example arguments: `{json.dumps(EXAMPLES[tool.name])}`", ""]
    lines += ["Answers with " + ", ".join(_success_fields(tool.output_schema)) + ".", ""]
    return "\n".join(lines)


async def _tools() -> list[Any]:
    # Defaults of a fresh install: the reference documents the settings' defaults.
    settings = Settings(_env_file=None, database_url="sqlite:///unused.db")  # type: ignore[call-arg]
    return await build_mcp_server(ServerRuntime(settings)).list_tools()


def render() -> str:
    tools = anyio.run(_tools)
    return "\n".join(render_tool(tool) for tool in tools).rstrip() + "\n"


def updated(document: str, reference: str) -> str:
    head, rest = document.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n\n{reference}\n{END}{tail}"


def main(argv: list[str]) -> int:
    document = DOC.read_text(encoding="utf-8")
    new = updated(document, render())
    if "--check" in argv:
        if new != document:
            print(f"{DOC} is out of date: run python scripts/tool_reference.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
