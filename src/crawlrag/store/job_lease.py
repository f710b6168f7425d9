"""What the shared job queue answers a worker (kept free of psycopg, which only PostgreSQL users install)."""

from __future__ import annotations

from dataclasses import dataclass

from crawlrag.models import CrawlJob


@dataclass(frozen=True, slots=True)
class Claimed:
    job: CrawlJob
    attempt: int  # 1 for a fresh job; more when a worker resumes one whose holder died or let it go


@dataclass(frozen=True, slots=True)
class Renewal:
    held: bool  # False: the lease was lost (the job ended or another worker holds it now)
    cancel_reason: str | None  # set once someone asked to cancel the job
