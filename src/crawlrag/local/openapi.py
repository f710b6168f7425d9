"""OpenAPI 3.x specs (JSON or YAML): an overview section, then one chunk-sized section per operation with its
method, path, summary, parameters and request/response schemas (local `$ref`s resolved, depth-limited)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import yaml

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_MAX_SCHEMA_DEPTH = 4
_MAX_PROPERTIES = 25
# Schema nodes rendered per operation: YAML anchors can make a small file describe an enormous tree.
_MAX_NODES = 500


@dataclass(frozen=True, slots=True)
class Section:
    fragment: str  # "" for the overview, "operation=get:/pets" for an operation
    title: str
    markdown: str


def load_spec(data: bytes, suffix: str) -> dict[str, Any] | None:
    """The parsed document when it is OpenAPI 3.x, else None (other JSON/YAML files are not specs)."""
    text = data.decode("utf-8-sig", errors="replace")
    if "openapi" not in text[:4096]:
        return None
    try:
        # safe_load builds plain data only; anchors are shared objects, and rendering below is depth-bounded.
        document = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError):
        return None
    if isinstance(document, dict) and str(document.get("openapi", "")).startswith("3"):
        return document
    return None


def spec_sections(spec: dict[str, Any], max_chars: int) -> list[Section]:
    info = _dict(spec.get("info"))
    api = str(info.get("title") or "API").strip()
    overview = [f"# {api}", f"OpenAPI {spec.get('openapi')}, version {info.get('version', '?')}"]
    if info.get("description"):
        overview.append(str(info["description"]).strip())
    servers = [str(s.get("url")) for s in spec.get("servers") or [] if isinstance(s, dict) and s.get("url")]
    if servers:
        overview.append("Servers: " + ", ".join(servers))
    sections = [Section("", api, "\n\n".join(overview))]
    paths = _dict(spec.get("paths"))
    for path, item in paths.items():
        if not isinstance(item, dict):
            continue
        shared = item.get("parameters") or []
        for method in METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                markdown = _operation(spec, method, str(path), operation, shared)
                fragment = "operation=" + quote(f"{method}:{path}", safe="/:{}")
                sections.append(Section(fragment, f"{api}: {method.upper()} {path}", _fit(markdown, max_chars)))
    return sections


def _operation(spec: dict[str, Any], method: str, path: str, op: dict[str, Any], shared: list[Any]) -> str:
    lines = [f"# {method.upper()} {path}"]
    summary = " — ".join(str(op[key]).strip() for key in ("operationId", "summary") if op.get(key))
    if summary:
        lines.append(summary)
    if op.get("description"):
        lines.append(str(op["description"]).strip())
    if op.get("deprecated"):
        lines.append("Deprecated.")
    parameters = [_resolve(spec, p) for p in [*shared, *(op.get("parameters") or [])]]
    rendered = [_parameter(spec, p) for p in parameters if isinstance(p, dict)]
    if rendered:
        lines.append("**Parameters:**\n" + "\n".join(rendered))
    body = _resolve(spec, op.get("requestBody"))
    if isinstance(body, dict):
        required = " (required)" if body.get("required") else ""
        lines.append(f"**Request body**{required}:\n" + _content(spec, body.get("content")))
    responses = _dict(op.get("responses"))
    if responses:
        out = []
        for status, response in responses.items():
            response = _resolve(spec, response)
            if not isinstance(response, dict):
                continue
            description = str(response.get("description") or "").strip()
            content = _content(spec, response.get("content"))
            out.append(f"- `{status}` {description}" + (f"\n{content}" if content else ""))
        lines.append("**Responses:**\n" + "\n".join(out))
    return "\n\n".join(lines)


def _parameter(spec: dict[str, Any], p: dict[str, Any]) -> str:
    required = "required" if p.get("required") else "optional"
    schema = _schema(spec, p.get("schema"), 0) if p.get("schema") is not None else "any"
    description = f": {str(p['description']).strip()}" if p.get("description") else ""
    return f"- `{p.get('name', '?')}` ({p.get('in', '?')}, {schema}, {required}){description}"


def _content(spec: dict[str, Any], content: Any) -> str:
    if not isinstance(content, dict):
        return ""
    return "\n".join(
        f"  - `{media}`: {_schema(spec, value.get('schema'), 0)}"
        for media, value in content.items()
        if isinstance(value, dict)
    )


def _schema(spec: dict[str, Any], schema: Any, depth: int, budget: list[int] | None = None) -> str:
    """A compact one-line rendering: `object {id: integer (required), tags: array of string}`."""
    budget = [_MAX_NODES] if budget is None else budget
    budget[0] -= 1
    name = schema.get("$ref", "").rsplit("/", 1)[-1] if isinstance(schema, dict) else ""
    schema = _resolve(spec, schema)
    if not isinstance(schema, dict):
        return "any"
    if budget[0] <= 0:
        return name or "…"
    if depth >= _MAX_SCHEMA_DEPTH:
        return name or str(schema.get("type", "object"))
    for combiner in ("oneOf", "anyOf", "allOf"):
        if isinstance(schema.get(combiner), list):
            joined = f" {combiner} ".join(
                _schema(spec, s, depth + 1, budget) for s in schema[combiner][:_MAX_PROPERTIES]
            )
            return f"{name} ({joined})" if name else f"({joined})"
    kind = str(schema.get("type", "object" if "properties" in schema else "any"))
    if kind == "array":
        text = f"array of {_schema(spec, schema.get('items'), depth + 1, budget)}"
    elif isinstance(schema.get("properties"), dict):
        required = set(schema.get("required") or [])
        fields = [
            f"{key}: {_schema(spec, value, depth + 1, budget)}{' (required)' if key in required else ''}"
            for key, value in list(schema["properties"].items())[:_MAX_PROPERTIES]
        ]
        text = "object {" + ", ".join(fields) + "}"
    else:
        text = kind + (f" ({schema['format']})" if schema.get("format") else "")
        if isinstance(schema.get("enum"), list):
            text += " one of " + ", ".join(str(v) for v in schema["enum"][:_MAX_PROPERTIES])
    return f"{name} {text}" if name else text


def _resolve(spec: dict[str, Any], value: Any, hops: int = 0) -> Any:
    """Follow a local `$ref` ("#/components/schemas/Pet"); remote or broken references stay unresolved."""
    if not isinstance(value, dict) or not isinstance(value.get("$ref"), str) or hops > 10:
        return value
    ref = value["$ref"]
    if not ref.startswith("#/"):
        return value
    node: Any = spec
    for part in ref[2:].split("/"):
        key = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or key not in node:
            return value
        node = node[key]
    return _resolve(spec, node, hops + 1)


def _fit(markdown: str, max_chars: int) -> str:
    """An operation stays one chunk: schemas past the chunk size are cut, the method, path and summary stay."""
    if len(markdown) <= max_chars:
        return markdown
    return markdown[: max_chars - 2].rstrip() + " …"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
