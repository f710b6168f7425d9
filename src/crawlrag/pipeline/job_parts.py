"""What the job manager works with: a job in memory, its modes and events, and how its errors are described."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import anyio

from crawlrag.crawl import CrawlInputError
from crawlrag.embeddings import EmbeddingError
from crawlrag.models import INTERRUPTED_REASON, CrawlJob, JobStatus
from crawlrag.pipeline.failures import SystemicError
from crawlrag.pipeline.indexer import IndexProgress, IndexReport
from crawlrag.pipeline.options import CrawlOptions
from crawlrag.store import StoreError

INTERRUPTED_ERROR = INTERRUPTED_REASON
CANCEL_REASON = "cancelled by cancel_crawl"
USER_FACING_ERRORS = (CrawlInputError, StoreError, EmbeddingError, SystemicError)

ProgressReporter = Callable[[int, int | None, str], Awaitable[None]]


class JobMode(StrEnum):
    """Who runs what a manager on the shared queue submits (the local queue always runs it here)."""

    LOCAL = "local"  # this process, at once (`crawlrag crawl`)
    WORKER = "worker"  # whichever worker claims it first; this process claims jobs too
    ENQUEUE = "enqueue"  # other processes (`crawlrag serve --no-worker`)


class JobEvents(Protocol):
    """What the manager reports as jobs run: the server turns these into metrics."""

    def progress(self, job_id: str, progress: IndexProgress) -> None: ...

    def finished(self, status: JobStatus) -> None: ...

    def counts(self, running: int, queued: int) -> None: ...


class NoJobEvents:
    def progress(self, job_id: str, progress: IndexProgress) -> None:
        pass

    def finished(self, status: JobStatus) -> None:
        pass

    def counts(self, running: int, queued: int) -> None:
        pass


class JobError(Exception):
    """A job request that cannot be honoured (unknown id, already running, already finished)."""


@dataclass(eq=False)
class Job:
    record: CrawlJob
    options: CrawlOptions
    done: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    report: IndexReport | None = None
    last_saved: float = 0.0
    cancel_reason: str = CANCEL_REASON
    held: bool = False  # this process runs it (always so with the local queue)
    lost: bool = False  # its lease went to another worker: this process writes nothing more for it

    @property
    def job_id(self) -> str:
        return self.record.job_id


def total_known(progress: IndexProgress) -> int | None:
    """Pages the crawl will handle as far as is known now; None until something has been discovered.

    Never below pages_done (skipped and failed pages count as done but not against max_pages), so a progress
    notification never reports more done than its total."""
    if not (progress.discovered or progress.pages_done):
        return None
    return max(progress.pages_done, min(progress.discovered, progress.max_pages))


def leaf_error(exc: BaseException) -> BaseException:
    """The first real error inside task-group wrappers."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def describe_error(exc: BaseException) -> str:
    """One line for the job record."""
    exc = leaf_error(exc)
    text = str(exc).strip()
    if isinstance(exc, USER_FACING_ERRORS) and text:
        return text  # these messages are written for the user
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
