"""Checking a tool call's arguments against the tool's published schema, before the SDK or the tool sees them.

The SDK's own argument parsing is lenient (`"5"` and `true` pass as integers) and answers in pydantic's words;
this check is strict, answers in the tools' own shape (`success: false`, `error`, `argument`, `rule`) and is
counted in /metrics like any other failed call.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from crawlrag.server.runtime import ServerRuntime
from crawlrag.server.schemas import PATTERN_MEANINGS, Schema
from crawlrag.server.toolkit import fail

_TYPE_WORDS = {"integer": "a whole number", "string": "a string", "boolean": "true or false", "array": "a list"}
# The value shown in a message is the caller's: a bounded prefix, never an echo of whatever was sent.
_SHOWN_CHARS = 60


@dataclass(frozen=True, slots=True)
class ArgumentProblem:
    """Why a call's arguments were refused: the argument (dotted path), the schema rule, and a sentence."""

    argument: str
    rule: str
    message: str


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}…"


def _type_words(expected: str | list[str]) -> str:
    names = [expected] if isinstance(expected, str) else expected
    words = [_TYPE_WORDS.get(name, name) for name in names if name != "null"]
    return " or ".join(words) + (" (or null)" if "null" in names else "")


def _name(error: ValidationError) -> str:
    parts = list(error.absolute_path)
    if not parts:
        return "arguments"
    name = str(parts[0])
    return name + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts[1:])


def describe(error: ValidationError) -> ArgumentProblem:
    """One readable sentence for a schema violation, naming the argument and the rule."""
    rule, name, value, limit = str(error.validator), _name(error), error.instance, error.validator_value
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if rule == "required":
        missing = [key for key in limit if key not in value]
        return ArgumentProblem(missing[0], rule, f"{missing[0]} is required")
    if rule == "additionalProperties":
        extra = sorted(set(value) - set(schema.get("properties", {})))
        allowed = ", ".join(schema.get("properties", {})) or "none"
        return ArgumentProblem(extra[0], rule, f"unknown argument {extra[0]!r}; this tool takes: {allowed}")
    if rule == "type":
        return ArgumentProblem(name, rule, f"{name} must be {_type_words(limit)}, got {_shown(value)}")
    if rule in ("minimum", "maximum"):
        low, high = schema.get("minimum"), schema.get("maximum")
        return ArgumentProblem(name, rule, f"{name} must be between {low} and {high}, got {value}")
    if rule == "minLength":
        return ArgumentProblem(name, rule, f"{name} must be a non-empty string")
    if rule == "maxLength":
        return ArgumentProblem(name, rule, f"{name} is {len(value)} characters long; the limit is {limit}")
    if rule == "maxItems":
        return ArgumentProblem(name, rule, f"{name} has {len(value)} entries; the limit is {limit}")
    if rule == "pattern":
        meaning = PATTERN_MEANINGS.get(str(limit), f"a string matching {limit}")
        return ArgumentProblem(name, rule, f"{name} must be {meaning}")
    return ArgumentProblem(name, rule, f"{name}: {error.message}")


class ArgumentChecker:
    """Checks calls against the tools' input schemas; tools it does not know are left to the SDK."""

    def __init__(self, schemas: Mapping[str, Schema]) -> None:
        self._validators = {name: Draft202012Validator(schema) for name, schema in schemas.items()}

    def check(self, tool: str, arguments: Any) -> ArgumentProblem | None:
        validator = self._validators.get(tool)
        if validator is None:
            return None
        error = best_match(validator.iter_errors({} if arguments is None else arguments))
        return None if error is None else describe(error)


def argument_middleware(runtime: ServerRuntime, checker: ArgumentChecker) -> Any:
    """Server middleware answering `tools/call` with invalid arguments in the tools' own failure shape."""

    async def middleware(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        params = ctx.params if ctx.method == "tools/call" and ctx.request_id is not None else None
        if params is None or not isinstance(params.get("name"), str):
            return await call_next(ctx)
        started = time.perf_counter()
        problem = checker.check(params["name"], params.get("arguments"))
        if problem is None:
            return await call_next(ctx)
        if runtime.started:
            runtime.metrics.tool_call(params["name"], "invalid", time.perf_counter() - started)
        return fail(problem.message, argument=problem.argument, rule=problem.rule)

    return middleware
