"""The files of a local source, whatever holds them (folder, archive, repository), and which of them are read."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from crawlrag.crawl.results import PageFailure, PageSkipped

# Build outputs and dependency folders: generated copies of the docs (or of other projects' docs), not sources.
# Sphinx's HTML output keeps a copy of every source page in _sources and theme files in _static.
SKIPPED_FOLDERS = frozenset(
    {
        "node_modules",
        "__pycache__",
        "_build",
        "build",
        "dist",
        "target",
        "venv",
        "_site",
        "site-packages",
        "_sources",
        "_static",
    }
)
TEXT_SUFFIXES = frozenset({".md", ".markdown", ".mdx", ".rst", ".txt", ".html", ".htm", ".ipynb"})
# Read only when the content is an OpenAPI 3 document; other JSON/YAML (package.json, CI files) is left alone.
SPEC_SUFFIXES = frozenset({".json", ".yaml", ".yml"})
READ_SUFFIXES = TEXT_SUFFIXES | SPEC_SUFFIXES | {".pdf"}


@dataclass(frozen=True, slots=True)
class Entry:
    """One file: its path inside the source (POSIX, relative), its URL, its size and how to read its bytes."""

    path: PurePosixPath
    url: str
    size: int
    read: Callable[[], bytes]


# What a source yields: files to read, and refusals (links, traversal, limits) reported as they are met.
Found = Entry | PageSkipped | PageFailure


def suffix_of(path: PurePosixPath) -> str:
    return path.suffix.lower()


def is_read(path: PurePosixPath) -> bool:
    """A file crawlrag reads: a known suffix, and no hidden or build-output folder (or hidden name) on the way."""
    if any(part.startswith(".") or part in SKIPPED_FOLDERS for part in path.parts):
        return False
    return suffix_of(path) in READ_SUFFIXES


def skipped_folder(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED_FOLDERS


def too_large(url: str, size: int, limit: int) -> PageSkipped:
    return PageSkipped(url, f"file too large: {size} bytes, LOCAL_MAX_FILE_BYTES is {limit}")
