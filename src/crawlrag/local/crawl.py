"""`crawl_local`: the pages of a local target, as the web crawler yields them (Page | PageFailure | PageSkipped).

URLs (stable across crawls, so unchanged files are recognised by their stored content hash):
- a file in a folder: its `file://` URL (`file:///home/me/docs/guide/intro.md`);
- a file in an archive or a repository: the container's URL, "#/" and the member path
  (`file:///x/docs.zip#/guide/intro.md`, `git+file:///x/repo#/docs/intro.md`, `git+https://host/r.git#/README.md`);
- a part of a document: "#" (or "&" after a member path) and `page=N` for PDF pages, `operation=METHOD:PATH`
  for OpenAPI operations (`file:///x/manual.pdf#page=12`, `file:///x/api.yaml#operation=get:/pets/{id}`).

All file reading, parsing, unpacking and git runs in worker threads: the sync generator that does the work is
advanced one item at a time with `anyio.to_thread.run_sync`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Generator, Iterator
from pathlib import PurePosixPath
from typing import TypeAlias

import anyio

from crawlrag.config import Settings
from crawlrag.crawl.results import CrawlRequest, PageFailure, PageSkipped
from crawlrag.crawl.urls import matches_any
from crawlrag.local.archives import ArchiveLimits, walk_archive
from crawlrag.local.entries import READ_SUFFIXES, Entry, Found, suffix_of, too_large
from crawlrag.local.gitrepo import cloned, tracked_files
from crawlrag.local.policy import LocalAccessError
from crawlrag.local.readers import read_documents
from crawlrag.local.target import LocalOptions, LocalTarget, TargetKind, resolve_target
from crawlrag.local.walker import walk_folder
from crawlrag.models import Page

log = logging.getLogger(__name__)

LocalResult: TypeAlias = Page | PageFailure | PageSkipped
_ROOT_NAMES = ("readme", "index")


class LocalCrawl:
    """Iterate for the results. `commit` is set once a repository is cloned; `root_url` names the page a source
    summary is made from (a top-level README or index, else the first page)."""

    def __init__(self, target: str, settings: Settings, request: CrawlRequest, options: LocalOptions) -> None:
        self.target_text = target
        self.settings = settings
        self.request = request
        self.options = options
        self.ref = options.ref
        self.target: LocalTarget | None = None  # resolved in the worker thread when iteration starts
        self.source_id = ""
        self.commit: str | None = None
        self.root_url: str | None = None
        self._root_rank = len(_ROOT_NAMES) + 1

    async def __aiter__(self) -> AsyncGenerator[LocalResult, None]:
        results = self._results()
        done = object()
        try:
            while True:
                item = await anyio.to_thread.run_sync(next, results, done)
                if item is done:
                    return
                assert isinstance(item, Page | PageFailure | PageSkipped)
                yield item
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(results.close)  # removes a clone's temporary folder

    # --- below: synchronous, in worker threads ---------------------------------------------------------------

    def _results(self) -> Generator[LocalResult, None, None]:
        self.target = resolve_target(self.target_text, self.settings.allowed_paths)
        self.source_id = (self.options.source_id or "").strip() or self.target.name
        pages = 0
        for found in self._found():
            if not isinstance(found, Entry):
                yield found
                continue
            if not self._wanted(found):
                continue
            for result in self._read(found):
                if isinstance(result, Page):
                    if pages >= self.request.max_pages:
                        return
                    pages += 1
                    self._note_root(found.path, result.url)
                yield result

    def _found(self) -> Iterator[Found]:
        target, settings = self.target, self.settings
        assert target is not None
        if target.kind is TargetKind.GIT:
            assert target.clone_url is not None
            with cloned(target.clone_url, self.ref, settings.git_timeout_seconds) as checkout:
                self.commit = checkout.commit
                log.info("%s at %s is commit %s", target.url, checkout.ref, checkout.commit)
                yield from tracked_files(
                    checkout, target.url, settings.git_timeout_seconds, settings.local_max_file_bytes
                )
            return
        if self.ref is not None:
            raise LocalAccessError(f"--ref names a git branch or tag, and {target.url} is not a repository")
        assert target.path is not None
        if target.kind is TargetKind.FOLDER:
            yield from walk_folder(target.path)
        elif target.kind is TargetKind.ARCHIVE:
            limits = ArchiveLimits(
                settings.archive_max_bytes,
                settings.archive_max_files,
                settings.archive_max_ratio,
                settings.local_max_file_bytes,
            )
            yield from walk_archive(target.path, target.url, limits)
        else:
            path = PurePosixPath(target.path.name)
            if suffix_of(path) not in READ_SUFFIXES:
                yield PageSkipped(target.url, f"unsupported file type: {path.suffix or path.name}")
                return
            size = target.path.stat().st_size
            yield Entry(path, target.url, size, target.path.read_bytes)

    def _wanted(self, entry: Entry) -> bool:
        include, exclude = self.request.include, self.request.exclude
        if include and not matches_any(entry.url, include) and not matches_any("/" + entry.path.as_posix(), include):
            return False
        return not (exclude and (matches_any(entry.url, exclude) or matches_any("/" + entry.path.as_posix(), exclude)))

    def _read(self, entry: Entry) -> Iterator[LocalResult]:
        limit = self.settings.local_max_file_bytes
        if entry.size > limit:
            yield too_large(entry.url, entry.size, limit)
            return
        try:
            data = entry.read()
            if len(data) > limit:
                yield too_large(entry.url, len(data), limit)
                return
            documents = read_documents(entry.path, entry.url, data, chunk_size=self.settings.chunk_size)
        except LocalAccessError:
            raise
        except Exception as exc:  # a broken file (bad zip entry, malformed PDF) fails alone, not the whole crawl
            log.info("cannot read %s", entry.url, exc_info=True)
            yield PageFailure(entry.url, f"cannot read {entry.path.name}: {type(exc).__name__}: {exc}"[:500])
            return
        for document in documents:
            if not document.markdown.strip():
                yield PageSkipped(document.url, "no text in the file")
                continue
            yield Page(
                url=document.url,
                source_id=self.source_id,
                title=document.title,
                markdown=document.markdown,
                content_type=document.content_type,
                # The commit a repository file was read at: stored with the page, like a web page's ETag.
                etag=f"git:{self.commit}" if self.commit else None,
            )

    def _note_root(self, path: PurePosixPath, url: str) -> None:
        stem = path.stem.lower()
        rank = _ROOT_NAMES.index(stem) if len(path.parts) == 1 and stem in _ROOT_NAMES else len(_ROOT_NAMES)
        if rank < self._root_rank:
            self.root_url, self._root_rank = url, rank


def crawl_local(
    target: str, settings: Settings, request: CrawlRequest | None = None, options: LocalOptions | None = None
) -> LocalCrawl:
    """The crawl of a local target. Iterating checks it against ALLOWED_PATHS first (in a worker thread), raising
    LocalAccessError, which names ALLOWED_PATHS, when it may not be read; `check_local_target` checks up front.

    `request` supplies max_pages and include/exclude globs (matched on the URL and on "/" + the member path);
    depth and concurrency do not apply to local sources.
    """
    return LocalCrawl(target, settings, request or CrawlRequest(url=target), options or LocalOptions())
