"""PDF manuals: the text of each page (pypdf, BSD-licensed), headed by the outline entries that point at it."""

from __future__ import annotations

import io
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from pypdf import PdfReader
from pypdf.errors import PdfReadError

log = logging.getLogger(__name__)
logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns about every quirk of real-world PDFs


@dataclass(frozen=True, slots=True)
class PdfPage:
    number: int  # 1-based, as in `#page=12`
    heading: str  # markdown heading lines for this page ("" when the outline has none before it)
    text: str


@dataclass(frozen=True, slots=True)
class PdfDocument:
    title: str
    pages: list[PdfPage]


def read_pdf(data: bytes) -> PdfDocument:
    """Text per page; a page without an outline entry of its own continues under the last heading before it."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ValueError("the PDF is encrypted")
        headings = _outline_headings(reader)
        metadata = reader.metadata
        title = str(metadata.title).strip() if metadata is not None and metadata.title else ""
        pages: list[PdfPage] = []
        current = ""
        for index, page in enumerate(reader.pages):
            own = headings.get(index, [])
            if own:
                current = "\n\n".join(f"{'#' * min(depth, 6)} {text}" for depth, text in own)
            elif current:
                current = current.split("\n\n")[-1]
            pages.append(PdfPage(index + 1, current, (page.extract_text() or "").strip()))
    except PdfReadError as exc:
        raise ValueError(f"not a readable PDF: {exc}") from None
    return PdfDocument(title, pages)


def _outline_headings(reader: PdfReader) -> dict[int, list[tuple[int, str]]]:
    found: dict[int, list[tuple[int, str]]] = defaultdict(list)

    def visit(items: list[Any], depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                visit(item, depth + 1)
                continue
            try:
                number = reader.get_destination_page_number(item)
            except Exception:  # a broken destination loses its heading, not the document
                continue
            title = " ".join(str(getattr(item, "title", "") or "").split())
            if number is not None and number >= 0 and title:
                found[number].append((depth, title))

    try:
        visit(list(reader.outline), 1)
    except Exception as exc:
        log.info("PDF outline unreadable: %s", exc)
    return found
