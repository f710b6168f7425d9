"""Turning ranked search hits into an answer that fits a token budget.

Hits of one section (same page and heading path, or the same `section_url` where chunks carry one) become one
result whose chunks are joined in page order. The budget is shared out in rank order; a result over its share
is shortened at a paragraph or sentence boundary, never inside a fenced code block; budget left at the end
widens results to their whole section, best first. Pure functions: the caller supplies the section texts and
the token counter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from crawlrag.chunking import parse_blocks
from crawlrag.tokens import TokenCounter

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
GAP = "\n\n[…]\n\n"  # between chunks of one section that are not next to each other


class ChunkLike(Protocol):
    url: str
    headings: str
    chunk_index: int
    content: str


@dataclass(slots=True)
class Passage:
    """One result of an answer: the best hit of its section, the text shown and how it was built."""

    hit: Any
    chunk_indexes: list[int]
    text: str
    tokens: int = 0
    expanded: bool = False
    truncated: bool = False
    full_text: str = field(default="", repr=False)


@dataclass(slots=True)
class Answer:
    passages: list[Passage]
    tokens: int
    truncated: bool


def section_key(hit: ChunkLike) -> tuple[str, str]:
    section_url = getattr(hit, "section_url", None)
    return (section_url, "") if section_url else (hit.url, hit.headings)


def group_by_section(hits: Sequence[ChunkLike]) -> list[list[ChunkLike]]:
    """Hits grouped by section, groups in the rank of their best hit."""
    groups: dict[tuple[str, str], list[ChunkLike]] = {}
    for hit in hits:
        groups.setdefault(section_key(hit), []).append(hit)
    return list(groups.values())


def join_chunks(hits: Sequence[ChunkLike]) -> tuple[list[int], str]:
    """The chunks of one section in page order; adjacent ones run on, gaps are marked."""
    ordered = sorted({hit.chunk_index: hit for hit in hits}.values(), key=lambda hit: hit.chunk_index)
    text, previous = "", None
    for hit in ordered:
        if previous is not None:
            text += "\n\n" if hit.chunk_index == previous + 1 else GAP
        text += hit.content.strip()
        previous = hit.chunk_index
    return [hit.chunk_index for hit in ordered], text


def section_text(markdown: str, headings: str) -> str | None:
    """The text under heading path `headings` in a page's markdown (with its subsections), or None."""
    if not headings:
        return None
    blocks = [
        block.text
        for block in parse_blocks(markdown)
        if block.headings == headings or block.headings.startswith(headings + " > ")
    ]
    return "\n\n".join(blocks) if blocks else None


def pieces(text: str) -> list[str]:
    """Where a text may be cut: between paragraphs and sentences; a fenced code block is one piece."""
    out: list[str] = []
    for block in parse_blocks(text):
        if block.is_code or block.is_heading:
            out.append(block.text)
        else:
            out.extend(sentence for sentence in _SENTENCE.split(block.text) if sentence.strip())
    return out


def shorten(text: str, budget: int, counter: TokenCounter) -> tuple[str, int]:
    """The longest start of `text` made of whole pieces within `budget` tokens, and its token count."""
    if budget <= 0:
        return "", 0
    whole = counter.count(text)
    if whole <= budget:
        return text, whole
    kept: list[str] = []
    used = 0
    pieces_of = pieces(text)
    for piece, tokens in zip(pieces_of, counter.counts(pieces_of), strict=True):
        if used + tokens > budget:
            break
        kept.append(piece)
        used += tokens
    shortened = "\n\n".join(kept)
    # Counts of pieces add up for whitespace-split tokenizers; recount so the budget holds for any counter.
    used = counter.count(shortened) if kept else 0
    while kept and used > budget:
        kept.pop()
        shortened = "\n\n".join(kept)
        used = counter.count(shortened) if kept else 0
    return shortened, used


def assemble(
    hits: Sequence[ChunkLike],
    *,
    match_count: int,
    max_tokens: int,
    counter: TokenCounter,
    section: Callable[[ChunkLike], str | None] | None = None,
) -> Answer:
    """Up to `match_count` section results from ranked `hits`, all their text together within `max_tokens`."""
    passages = []
    for group in group_by_section(hits)[:match_count]:
        indexes, text = join_chunks(group)
        passages.append(Passage(group[0], indexes, text, full_text=text))
    remaining = max_tokens
    # First pass: each result gets an even share of what is left, so a long first hit cannot starve the rest.
    for position, passage in enumerate(passages):
        share = remaining // (len(passages) - position)
        passage.text, passage.tokens = shorten(passage.full_text, share, counter)
        passage.truncated = passage.text != passage.full_text
        remaining -= passage.tokens
    # Second pass: what shorter results left over goes back to the shortened ones, best first.
    for passage in passages:
        if passage.truncated and remaining > 0:
            passage.text, tokens = shorten(passage.full_text, passage.tokens + remaining, counter)
            remaining -= tokens - passage.tokens
            passage.tokens, passage.truncated = tokens, passage.text != passage.full_text
    # Third pass: budget still left widens whole results to their section, best first.
    if section is not None:
        for passage in passages:
            if passage.truncated or remaining <= 0:
                continue
            whole = section(passage.hit)
            if whole is None or len(whole) <= len(passage.text):
                continue
            tokens = counter.count(whole)
            if tokens - passage.tokens <= remaining:
                remaining -= tokens - passage.tokens
                passage.text, passage.tokens, passage.expanded = whole, tokens, True
    kept = [passage for passage in passages if passage.text]
    truncated = len(kept) < len(passages) or any(passage.truncated for passage in kept)
    return Answer(kept, sum(passage.tokens for passage in kept), truncated)


class CodeLike(Protocol):
    code: str
    summary: str


@dataclass(slots=True)
class CodePassage:
    hit: Any
    summary: str
    tokens: int
    truncated: bool


def assemble_code(
    hits: Sequence[CodeLike], *, match_count: int, max_tokens: int, counter: TokenCounter
) -> tuple[list[CodePassage], int, bool]:
    """Code examples within `max_tokens`: a code block is shown whole or not at all; summaries are shortened."""
    chosen: list[CodePassage] = []
    remaining, truncated = max_tokens, False
    candidates = list(hits)[:match_count]
    for position, hit in enumerate(candidates):
        code_tokens = counter.count(hit.code)
        if code_tokens > remaining:
            truncated = True
            continue
        share = max(0, remaining // (len(candidates) - position) - code_tokens)
        summary, summary_tokens = shorten(hit.summary, share, counter)
        remaining -= code_tokens + summary_tokens
        shortened = summary != hit.summary
        truncated = truncated or shortened
        chosen.append(CodePassage(hit, summary, code_tokens + summary_tokens, shortened))
    return chosen, max_tokens - remaining, truncated
