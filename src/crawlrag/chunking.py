"""Markdown-aware chunking: split at headings, then paragraphs, then sentences, never inside a code fence.

The default size (about 1,000 characters) fits the 256-token window of all-MiniLM-L6-v2, so a chunk is embedded
whole rather than silently truncated; given the embedder's `TokenCounter` and `max_tokens`, a chunk over the
window is split further, so none exceeds it. Chunks break at headings; a section smaller than a quarter of the
size merges with the next, a long one is split with its heading path kept on every piece.

Each chunk carries the anchor of its section: the `{#id}` that extraction appends to headings and API
signatures (`crawlrag.crawl.html_prep`), read and removed here, so results can link to `page#anchor`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from crawlrag.models import Chunk
from crawlrag.tokens import TokenCounter

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_ANCHOR = re.compile(r"\s*\{#([^\s{}]+)\}\s*$")
# An API signature as extraction writes it: one inline code span, then its anchor.
_SIGNATURE_ANCHOR = re.compile(r"^(`[^`\n]+`)\s*\{#([^\s{}]+)\}\s*$")
_FENCE = re.compile(r"^(\s{0,3})(`{3,}|~{3,})(.*)$")
# [text](target "title") and ![alt](src): the target is noise for embeddings and keyword search (every URL repeats
# the host and port), so chunks keep the visible text only; the chunk's own URL says where it came from.
_LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\((?:[^()\s]|\([^()]*\))*(?:\s+\"[^\"]*\")?\)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[`*_])")

# A code block is split only when it is this many times the chunk size: splitting code loses its meaning, while
# a block somewhat over the embedding window still embeds its most telling start and stays whole for readers.
HARD_LIMIT_FACTOR = 3
MIN_LINK_LIST_CHARS = 100
DEFAULT_MAX_LINK_DENSITY = 0.7


@dataclass(slots=True)
class Block:
    text: str
    headings: str
    is_heading: bool = False
    is_code: bool = False
    is_signature: bool = False  # an API signature: like a heading, it opens a section and leads its chunk
    anchor: str = ""  # of the nearest heading or signature at or before this block


def strip_links(text: str) -> str:
    """Replace markdown links and images by their text."""
    return _LINK.sub(lambda match: match.group(2), text)


def link_density(text: str) -> float:
    """The share of a paragraph's visible text that is link text."""
    visible = strip_links(text).strip()
    if not visible:
        return 0.0
    linked = sum(len(match.group(2)) for match in _LINK.finditer(text))
    return linked / len(visible)


def parse_blocks(markdown: str, *, max_link_density: float = 1.0) -> list[Block]:
    """Cut markdown into headings, fenced code blocks and paragraphs, each tagged with its heading path."""
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    paragraph: list[str] = []
    anchor = ""
    signature_pending = False
    lines = markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n")

    def heading_path() -> str:
        return " > ".join(f"{'#' * level} {text}" for level, text in path)

    def flush() -> None:
        nonlocal signature_pending
        raw = "\n".join(paragraph)
        text = strip_links(raw).strip("\n")
        # Lists made of links (tables of contents, indexes, "see also" runs, navigation that escaped extraction)
        # say nothing in their own words and match every keyword query: leave them out of the index.
        if len(text) >= MIN_LINK_LIST_CHARS and link_density(raw) > max_link_density:
            paragraph.clear()
            signature_pending = False
            return
        if text.strip():
            blocks.append(Block(text, heading_path(), is_signature=signature_pending, anchor=anchor))
        paragraph.clear()
        signature_pending = False

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush()
            marker = fence.group(2)
            body = [line]
            i += 1
            while i < len(lines):
                body.append(lines[i])
                closing = _FENCE.match(lines[i])
                i += 1
                # A fence closes only with the same character, at least as long, and no info string.
                if (
                    closing
                    and closing.group(2)[0] == marker[0]
                    and len(closing.group(2)) >= len(marker)
                    and not closing.group(3).strip()
                ):
                    break
            blocks.append(Block("\n".join(body), heading_path(), is_code=True, anchor=anchor))
            continue
        heading = _HEADING.match(line)
        signature = None if heading else _SIGNATURE_ANCHOR.match(line)
        if heading:
            flush()
            level = len(heading.group(1))
            while path and path[-1][0] >= level:
                path.pop()
            title = heading.group(2)
            explicit = _ANCHOR.search(title)
            if explicit:
                title, anchor = title[: explicit.start()], explicit.group(1)
            title = strip_links(title).replace("\u00b6", "").strip()
            path.append((level, title))
            blocks.append(Block(f"{'#' * level} {title}", heading_path(), is_heading=True, anchor=anchor))
        elif signature:
            flush()
            anchor = signature.group(2)
            paragraph.append(signature.group(1))
            signature_pending = True
            flush()
        elif not line.strip():
            flush()
        else:
            paragraph.append(line)
        i += 1
    flush()
    return blocks


def _split_sentences(text: str, size: int) -> Iterator[str]:
    """Split an over-long paragraph into sentence groups of at most `size`, words as a last resort."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        if len(sentence) <= size:
            pieces.append(sentence)
            continue
        words = sentence.split(" ")
        current = ""
        for word in words:
            while len(word) > size:  # an unbroken run (a URL, base64): cut it hard
                if current:
                    pieces.append(current)
                    current = ""
                pieces.append(word[:size])
                word = word[size:]
            candidate = f"{current} {word}" if current else word
            if len(candidate) > size and current:
                pieces.append(current)
                current = word
            else:
                current = candidate
        if current:
            pieces.append(current)
    current = ""
    for piece in pieces:
        candidate = f"{current} {piece}" if current else piece
        if len(candidate) > size and current:
            yield current
            current = piece
        else:
            current = candidate
    if current:
        yield current


def _split_code(text: str, size: int) -> Iterator[str]:
    """Split a huge fenced block by lines, re-fencing each piece so every chunk stays valid markdown."""
    lines = text.split("\n")
    opening = lines[0]
    marker = _FENCE.match(opening)
    fence = marker.group(2) if marker else "```"
    body = lines[1:-1] if len(lines) > 1 and lines[-1].strip().startswith(fence[0] * 3) else lines[1:]
    current: list[str] = []
    length = 0
    for line in body:
        if current and length + len(line) + 1 > size:
            yield "\n".join([opening, *current, fence])
            current, length = [], 0
        current.append(line[: size * HARD_LIMIT_FACTOR])
        length += len(line) + 1
    if current:
        yield "\n".join([opening, *current, fence])


def _pieces(blocks: list[Block], size: int) -> Iterator[Block]:
    """Yield blocks no larger than the size, except code blocks under the hard limit."""
    hard_limit = size * HARD_LIMIT_FACTOR
    for block in blocks:
        if len(block.text) <= size or (block.is_code and len(block.text) <= hard_limit):
            yield block
        elif block.is_code:
            for part in _split_code(block.text, size):
                yield Block(part, block.headings, is_code=True, anchor=block.anchor)
        else:
            for part in _split_sentences(block.text, size):
                yield Block(part, block.headings, anchor=block.anchor)


def chunk_markdown(
    markdown: str,
    *,
    url: str,
    title: str,
    chunk_size: int = 1000,
    max_link_density: float = DEFAULT_MAX_LINK_DENSITY,
    token_counter: TokenCounter | None = None,
    max_tokens: int | None = None,
) -> list[Chunk]:
    """Split a page's markdown into chunks of about `chunk_size` characters with their heading paths.

    With `token_counter` and `max_tokens`, no chunk counts more than `max_tokens` tokens (code blocks included).
    """
    # A section this small is merged into the next rather than left as a chunk too thin to retrieve on its own.
    min_size = chunk_size // 4
    groups: list[list[Block]] = []
    current: list[Block] = []
    length = 0

    for block in _pieces(parse_blocks(markdown, max_link_density=max_link_density), chunk_size):
        leads = block.is_heading or block.is_signature
        starts_section = leads and length >= min_size and not (current and _leads(current[-1]))
        overflows = length + len(block.text) + 2 > chunk_size
        # A heading (or signature) always stays with the content that follows it.
        if current and (starts_section or (overflows and not _leads(current[-1]))):
            groups.append(current)
            current, length = [], 0
        current.append(block)
        length += len(block.text) + 2
    if current:
        if groups and all(_leads(block) for block in current):
            groups[-1].extend(current)  # trailing bare headings carry no content of their own
        else:
            groups.append(current)
    if token_counter is not None and max_tokens is not None and max_tokens > 0:
        groups = _fit_tokens(groups, token_counter, max_tokens)

    return [
        Chunk.build(
            url=url,
            title=title,
            headings=group[0].headings,
            chunk_index=index,
            content=_text(group),
            anchor=group[0].anchor,
        )
        for index, group in enumerate(groups)
    ]


def _leads(block: Block) -> bool:
    return block.is_heading or block.is_signature


def _text(group: list[Block]) -> str:
    return "\n\n".join(block.text for block in group)


def _fit_tokens(groups: list[list[Block]], counter: TokenCounter, max_tokens: int) -> list[list[Block]]:
    """Split every group whose text counts more than `max_tokens` until each piece fits."""
    counts = counter.counts([_text(group) for group in groups])
    fitted: list[list[Block]] = []
    for group, count in zip(groups, counts, strict=True):
        if count <= max_tokens:
            fitted.append(group)
        else:
            fitted.extend(_split_to_tokens(group, count, counter, max_tokens))
    return fitted


def _split_to_tokens(group: list[Block], count: int, counter: TokenCounter, max_tokens: int) -> list[list[Block]]:
    if count <= max_tokens:
        return [group]
    if len(group) > 1:
        # Halve at a block boundary, keeping a heading with what follows it.
        middle = len(group) // 2
        while middle > 1 and _leads(group[middle - 1]):
            middle -= 1
        halves = [group[:middle], group[middle:]]
    else:
        block = group[0]
        text = block.text
        # Characters per token vary (code, identifiers): aim below the window and let recursion finish the job.
        size = max(16, int(len(text) * max_tokens / count * 0.9))
        parts = list(_split_code(text, size) if block.is_code else _split_sentences(text, size))
        if len(parts) <= 1:  # nothing left to split at a boundary: cut by characters
            parts = [text[i : i + size] for i in range(0, len(text), size)]
        if len(parts) <= 1:  # a few characters over a (tiny) window: nothing smaller can be made
            return [group]
        halves = [[Block(part, block.headings, is_code=block.is_code, anchor=block.anchor)] for part in parts]
    pieces: list[list[Block]] = []
    for half, half_count in zip(halves, counter.counts([_text(half) for half in halves]), strict=True):
        pieces.extend(_split_to_tokens(half, half_count, counter, max_tokens))
    return pieces
