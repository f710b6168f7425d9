"""Extract fenced code blocks worth returning on their own, with the prose around them and a summary."""

from __future__ import annotations

import re

from crawlrag.chunking import parse_blocks
from crawlrag.models import CodeExample

CONTEXT_CHARS = 500
_FIRST_SENTENCE = re.compile(r"^(.+?[.!?:])(\s|$)", re.S)


def _language(opening: str) -> str:
    info = opening.strip().lstrip("`~").strip()
    return info.split()[0].lower() if info else ""


def _code_body(block: str) -> str:
    lines = block.split("\n")
    if len(lines) >= 2 and lines[-1].strip()[:3] in ("```", "~~~"):
        lines = lines[:-1]
    return "\n".join(lines[1:]).strip("\n")


def _heading_text(headings: str) -> str:
    last = headings.rsplit(" > ", 1)[-1]
    return last.lstrip("#").strip()


def summarize_code(headings: str, before: str, language: str) -> str:
    """A deterministic summary: the nearest heading and the first sentence of the prose that introduces the code."""
    heading = _heading_text(headings)
    lead = before.strip().split("\n\n")[-1].strip() if before.strip() else ""
    sentence = _FIRST_SENTENCE.match(lead)
    lead = (sentence.group(1) if sentence else lead)[:300]
    kind = f"{language} example" if language else "Code example"
    parts = [f"{kind}: {heading}" if heading else kind]
    if lead:
        parts.append(lead)
    return " — ".join(parts)


def extract_code_examples(markdown: str, *, url: str, min_chars: int) -> list[CodeExample]:
    """Fenced blocks of at least `min_chars` characters of code, in page order."""
    blocks = parse_blocks(markdown)
    examples: list[CodeExample] = []
    for position, block in enumerate(blocks):
        if not block.is_code:
            continue
        code = _code_body(block.text)
        if len(code) < min_chars:
            continue
        before = "\n\n".join(b.text for b in blocks[max(0, position - 3) : position] if not b.is_code)
        after = "\n\n".join(b.text for b in blocks[position + 1 : position + 3] if not b.is_code)
        language = _language(block.text.split("\n", 1)[0])
        examples.append(
            CodeExample(
                url=url,
                chunk_index=len(examples),
                language=language,
                code=code,
                summary=summarize_code(block.headings, before, language),
                context_before=before[-CONTEXT_CHARS:],
                context_after=after[:CONTEXT_CHARS],
                headings=block.headings,
            )
        )
    return examples
