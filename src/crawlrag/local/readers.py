"""Bytes of one file → the documents it holds: one for a text file, one per page of a PDF, one per operation
of an OpenAPI spec (plus its overview). All synchronous and CPU-bound: callers run them in a worker thread."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from crawlrag.crawl.extract import clean_text, decode_html, extract_html, extract_text
from crawlrag.local.entries import SPEC_SUFFIXES, suffix_of
from crawlrag.local.markup import mdx_to_markdown, notebook_to_markdown, rst_to_markdown
from crawlrag.local.openapi import load_spec, spec_sections
from crawlrag.local.pdf import read_pdf
from crawlrag.local.policy import section_url

CONTENT_TYPES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".mdx": "text/mdx",
    ".rst": "text/x-rst",
    ".txt": "text/plain",
    ".html": "text/html",
    ".htm": "text/html",
    ".ipynb": "application/x-ipynb+json",
    ".pdf": "application/pdf",
}


OPENAPI_TYPE = "application/vnd.oai.openapi"


@dataclass(frozen=True, slots=True)
class Document:
    url: str
    title: str
    markdown: str
    content_type: str


def read_documents(path: PurePosixPath, url: str, data: bytes, *, chunk_size: int) -> list[Document]:
    """The documents in a file; [] when it holds none crawlrag indexes (JSON that is not an OpenAPI spec).

    Raises ValueError for a file that claims a format and is broken (invalid notebook JSON, unreadable PDF).
    """
    suffix = suffix_of(path)
    if suffix == ".pdf":
        return _pdf(path, url, data)
    if suffix in SPEC_SUFFIXES:
        spec = load_spec(data, suffix)
        if spec is None:
            return []
        return [
            Document(section_url(url, s.fragment) if s.fragment else url, s.title, clean_text(s.markdown), OPENAPI_TYPE)
            for s in spec_sections(spec, chunk_size)
        ]
    content_type = CONTENT_TYPES[suffix]
    if suffix in (".html", ".htm"):
        extracted = extract_html(decode_html(data, None), url)
        return [Document(url, extracted.title or path.name, extracted.markdown, content_type)]
    if suffix == ".ipynb":
        text = notebook_to_markdown(data)
    else:
        text = data.decode("utf-8-sig", errors="replace")
        if suffix == ".mdx":
            text = mdx_to_markdown(text)
        elif suffix == ".rst":
            text = rst_to_markdown(text)
    extracted = extract_text(text, url)
    return [Document(url, extracted.title, extracted.markdown, content_type)]


def _pdf(path: PurePosixPath, url: str, data: bytes) -> list[Document]:
    pdf = read_pdf(data)
    name = pdf.title or path.name
    documents = []
    for page in pdf.pages:
        if not page.text:
            continue
        heading = page.heading.split("\n\n")[-1].lstrip("#").strip() if page.heading else ""
        title = f"{name}: {heading}" if heading else f"{name}, page {page.number}"
        markdown = f"{page.heading}\n\n{page.text}" if page.heading else page.text
        documents.append(
            Document(section_url(url, f"page={page.number}"), title, clean_text(markdown), "application/pdf")
        )
    return documents
