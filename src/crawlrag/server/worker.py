"""`crawlrag worker`: a process that runs crawl jobs from the shared PostgreSQL queue and answers no MCP calls.

It is a server runtime without the MCP transports: the same store, embedder, crawler and job manager (claiming up
to WORKER_CONCURRENCY jobs at once), with /health and /metrics on HEALTH_PORT for probes. SIGTERM or SIGINT hands
the running jobs back to the queue (another worker resumes them at once) and stops.
"""

from __future__ import annotations

import logging
import signal

import anyio

from crawlrag.config import Settings
from crawlrag.server.runtime import ServerRuntime
from crawlrag.server.serve import health_listener

log = logging.getLogger(__name__)


async def run_worker(settings: Settings, runtime: ServerRuntime | None = None) -> None:
    runtime = runtime or ServerRuntime(settings, max_running_jobs=settings.worker_concurrency)
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with runtime, health_listener(runtime, settings.host, settings.health_port):
            log.info(
                "crawl worker %s ready: up to %d job(s) at once from the shared queue",
                runtime.jobs.worker,
                runtime.jobs.max_running,
            )
            async for received in signals:
                log.info("received %s, handing running jobs back to the queue", signal.Signals(received).name)
                break
