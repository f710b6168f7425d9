"""fetch_page: the stored markdown of a crawled page or of one of its sections, in parts that fit a budget."""

from __future__ import annotations

from typing import Any

import anyio

from crawlrag.answers import pieces, section_text
from crawlrag.chunking import parse_blocks
from crawlrag.server.arguments import check_url
from crawlrag.server.runtime import ServerRuntime
from crawlrag.server.search_tools import DATA_NOTICE
from crawlrag.server.toolkit import READ_ONLY, ToolResult, ToolSet, add_tool, fail, ok
from crawlrag.tokens import TokenCounter

MAX_LISTED_SECTIONS = 50


def heading_paths(markdown: str) -> list[str]:
    return list(dict.fromkeys(block.headings for block in parse_blocks(markdown) if block.is_heading))


def find_section(paths: list[str], wanted: str) -> str | None:
    """A heading path given whole (as in results' `headings`) or by its last heading's text."""
    wanted = wanted.strip()
    if wanted in paths:
        return wanted
    folded = wanted.lstrip("#").strip().casefold()
    for path in paths:
        if path.rsplit(" > ", 1)[-1].lstrip("#").strip().casefold() == folded:
            return path
    return None


def split_parts(markdown: str, budget: int, counter: TokenCounter) -> list[str]:
    """Consecutive parts of at most `budget` tokens, cut before headings where possible, then between
    paragraphs and sentences; a code block longer than the budget is a part of its own, whole."""
    units: list[str] = []
    for block in parse_blocks(markdown):
        if block.is_heading or not units:
            units.append(block.text)
        else:
            units[-1] += "\n\n" + block.text
    parts: list[str] = []
    current, used = "", 0
    for unit in units:
        for piece in [unit] if counter.count(unit) <= budget else pieces(unit):
            tokens = counter.count(piece)
            if current and used + tokens > budget:
                parts.append(current)
                current, used = "", 0
            current = f"{current}\n\n{piece}" if current else piece
            used += tokens
    if current:
        parts.append(current)
    return parts or [""]


def register_page_tools(tools: ToolSet, runtime: ServerRuntime, counter: TokenCounter) -> None:
    @add_tool(tools, runtime, title="Read a crawled page", annotations=READ_ONLY)
    async def fetch_page(
        url: str, section: str | None = None, part: int = 1, max_tokens: int | None = None
    ) -> ToolResult:
        """Return the stored markdown of a crawled page, or of one section of it, as search results cite it.

        A page longer than `max_tokens` comes in parts cut at section boundaries: `parts` says how many and
        `next_part` which to ask for next. `sections` lists the page's heading paths, to pass as `section`.
        """
        normalized = check_url(url)
        budget = runtime.settings.max_result_tokens if max_tokens is None else max_tokens
        store = runtime.context.store

        def load() -> tuple[Any, str | None]:
            # A URL stored under several versions of its site: the most recently crawled one.
            page = store.get_page(normalized, None)
            return page, store.page_markdown(normalized, page.source_id) if page is not None else None

        page, markdown = await anyio.to_thread.run_sync(load)
        if page is None or markdown is None:
            return fail(f"{normalized} is not in the index; crawl it first with crawl_single_page (or smart_crawl_url)")
        paths = heading_paths(markdown)
        text, chosen = markdown, None
        if section is not None:
            chosen = find_section(paths, section)
            found = section_text(markdown, chosen) if chosen is not None else None
            if found is None:
                listed = "; ".join(paths[:MAX_LISTED_SECTIONS]) or "the page has no headings"
                return fail(f"no section {section[:100]!r} on {normalized}; its sections: {listed}")
            text = found
        parts = split_parts(text, budget, counter)
        if part > len(parts):
            return fail(f"part must be between 1 and {len(parts)} for this page and max_tokens, got {part}")
        shown = parts[part - 1]
        fields: dict[str, Any] = {"next_part": part + 1} if part < len(parts) else {}
        return ok(
            url=normalized,
            title=page.title,
            section=chosen,
            markdown=shown,
            tokens=counter.count(shown),
            max_tokens=budget,
            part=part,
            parts=len(parts),
            truncated=len(parts) > 1,
            sections=paths[:MAX_LISTED_SECTIONS],
            **fields,
            notice=DATA_NOTICE,
        )
