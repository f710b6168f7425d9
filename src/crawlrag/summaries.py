"""Deterministic, extractive summaries for when no LLM is configured."""

from __future__ import annotations

import re

from crawlrag.chunking import parse_blocks

_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MIN_WORDS = 8


def _plain(text: str) -> str:
    text = _LINK.sub(r"\1", text)
    return re.sub(r"[*_`>#|]+", "", text).strip()


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
