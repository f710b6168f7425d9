"""Deterministic, extractive summaries for when no LLM is configured."""

from __future__ import annotations

import re

from crawlrag.chunking import parse_blocks

_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
# Emphasis is a run of * or _ that opens after a space (or the start) and closes before a space or punctuation:
# `*word*`, `**bold text**`, `_em_`. Identifiers (`__init__`, `*args`, `**kwargs`, `a_b_c`, `Lib/json/__init__.py`)
# are left whole.
_EMPHASIS = re.compile(
    r"(?<![^\s(\[])(\*{1,3}|_{1,3})(?=[^\s*_])((?:[^*_\n]|(?<=\w)_(?=\w))+?)(?<=[^\s*_])\1(?![^\s)\].,;:!?])"
)
_MARKUP = re.compile(r"`+|^\s*(?:#+|>+|\|)\s*|\s*\|\s*$", re.MULTILINE)
_MIN_WORDS = 8


def _plain(text: str) -> str:
    text = _LINK.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\2", text)
    return _MARKUP.sub("", text).strip()


def first_meaningful_paragraph(markdown: str) -> str:
    """The first prose paragraph of a page: not a heading, code, table, list of links or a one-liner."""
    for block in parse_blocks(markdown):
        if block.is_code or block.is_heading:
            continue
        stripped = block.text.lstrip()
        if stripped.startswith(("|", "- [", "* [", "<")):
            continue
        plain = " ".join(_plain(block.text).split())
        if len(plain.split()) >= _MIN_WORDS:
            return plain
    return ""


def summarize_source(source_id: str, title: str, markdown: str, max_chars: int = 400) -> str:
    """Title and first meaningful paragraph of the source's root page, cut at a word boundary."""
    paragraph = first_meaningful_paragraph(markdown)
    head = title.strip() or source_id
    summary = f"{head}: {paragraph}" if paragraph else head
    if len(summary) > max_chars:
        summary = summary[: max_chars - 1].rsplit(" ", 1)[0] + "…"
    return summary
