"""The `crawlrag` command: crawl, refresh, jobs, search, sources, reindex, serve, health, db."""

from __future__ import annotations

import functools
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, cast

import anyio
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from crawlrag.config import ConfigError, Settings, load_settings, package_version
from crawlrag.context import AppContext
from crawlrag.crawl import Crawler, CrawlInputError
from crawlrag.embeddings import EmbeddingError
from crawlrag.llm import build_enricher
from crawlrag.local import LocalAccessError, is_local_target, resolve_target
from crawlrag.models import CrawlJob, JobStatus, SearchHit
from crawlrag.pipeline.jobs import Job, JobManager, NoJobEvents
from crawlrag.pipeline.options import CrawlOptions
from crawlrag.pipeline.queue import open_job_queue
from crawlrag.pipeline.refresh import refresh_plans
from crawlrag.pipeline.reindex import Reindexer, sources_to_reindex
from crawlrag.pipeline.report import IndexProgress, IndexReport
from crawlrag.search import SearchInputError, SearchMode
from crawlrag.server.commands import health, serve, worker
from crawlrag.sources.deletion import NotConfirmed, run_delete
from crawlrag.sources.listing import sites_view
from crawlrag.store import StoreError, migrate_store

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Crawl documentation sites and search them.")
# stdout carries only results (and, when serving over stdio, only MCP protocol traffic); everything else is stderr.
err = Console(stderr=True)
# After Ctrl-C (or SIGTERM) the job gets this long to stop and record what it stored.
STOP_SECONDS = 2.5
EXIT_INTERRUPTED = 130


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"crawlrag {package_version()}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit")
    ] = False,
) -> None:
    """Crawl documentation sites and search them."""


def _settings(**overrides: Any) -> Settings:
    try:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    # Libraries stay at WARNING whatever LOG_LEVEL says: their INFO lines (one per HTTP request) drown ours.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("crawlrag").setLevel(settings.log_level)
    return settings


@contextmanager
def _context(settings: Settings) -> Iterator[AppContext]:
    try:
        context = AppContext.create(settings)
    except StoreError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    try:
        yield context
    finally:
        context.close()


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _print_report(report: IndexReport) -> None:
    p = report.progress
    again = f" ({p.reprocessed} of them unchanged but re-processed for new index settings)" if p.reprocessed else ""
    err.print(
        f"[bold]{p.stored}[/bold] pages stored{again}, {p.index} index pages, {p.unchanged} unchanged, "
        f"{p.skipped} skipped, "
        f"[{'red' if p.failed else 'green'}]{p.failed} failed[/]; {p.chunks_stored} chunks stored "
        f"({p.chunks_embedded} embedded) in {report.seconds:.1f}s"
    )
    for failure in report.failures[:50]:
        err.print(f"  [red]failed[/red] {failure.url}: {failure.reason}")
    if len(report.failures) > 50:
        err.print(f"  … and {len(report.failures) - 50} more failures")
    for skipped in report.skipped[:20]:
        err.print(f"  [yellow]skipped[/yellow] {skipped.url}: {skipped.reason}")


class _ProgressBar(NoJobEvents):
    """Job events shown as a progress bar on stderr."""

    def __init__(self, bar: Progress) -> None:
        self._bar = bar
        self._task = bar.add_task("crawling", total=None, chunks=0)

    def progress(self, job_id: str, progress: IndexProgress) -> None:
        total = min(max(progress.discovered, progress.pages_done), progress.max_pages) or None
        self._bar.update(self._task, completed=progress.pages_done, total=total, chunks=progress.chunks_stored)


async def _stop_on_signal(jobs: JobManager, job: Job) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for received in signals:
            name = signal.Signals(received).name
            err.print(f"[yellow]{name}: stopping the crawl…[/yellow]")
            if not job.record.status.finished:
                await jobs.cancel(job.job_id, wait_seconds=STOP_SECONDS, reason=f"stopped by {name}")
            return


async def _crawl(context: AppContext, options: CrawlOptions, quiet: bool) -> Job:
    """Run the crawl as a recorded job of this process; Ctrl-C cancels it (what was stored stays)."""
    settings = context.settings
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[chunks]} chunks"),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=False,
    ) as bar:
        async with Crawler(settings) as crawler:
            if not is_local_target(options.url):
                await crawler.check(options.url)  # a refused URL is an input error, not a job
            queue = open_job_queue(settings, context.store)  # on PostgreSQL the job holds a lease, like a worker's
            manager = JobManager(
                settings, context.store, context.embedder, crawler, _ProgressBar(bar), max_running=1, queue=queue
            )
            async with manager as jobs, anyio.create_task_group() as tasks:
                job = await jobs.submit(options)
                tasks.start_soon(_stop_on_signal, jobs, job)
                await job.done.wait()
                tasks.cancel_scope.cancel()
    return job


def _job_summary(job: Job) -> dict[str, Any]:
    """The report's fields (as before crawls were jobs) and the job record under "job"."""
    return (job.report.to_dict() if job.report is not None else {}) | {"job": _job_view(job.record)}


@app.command()
def crawl(
    url: Annotated[
        str,
        typer.Argument(
            help="Start URL (a page, a sitemap.xml or an llms.txt), or a local folder, file, archive or git "
            "repository (a path, file://, git+https://, git+ssh://, git+file://; local paths need ALLOWED_PATHS)"
        ),
    ],
    max_depth: Annotated[int | None, typer.Option(help="Link depth for recursive crawls (0 = this page)")] = None,
    max_pages: Annotated[int | None, typer.Option(help="Stop after this many pages")] = None,
    max_concurrent: Annotated[int | None, typer.Option(help="Pages fetched at once")] = None,
    include: Annotated[list[str] | None, typer.Option(help="Only URLs matching this glob (repeatable)")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Skip URLs matching this glob (repeatable)")] = None,
    chunk_size: Annotated[int | None, typer.Option(help="Characters per chunk for this crawl (CHUNK_SIZE)")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Re-process every page, even unchanged ones with the same settings")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout")] = False,
    source_id: Annotated[
        str | None, typer.Option(help="Local targets: the source id (default: the folder, archive or repo name)")
    ] = None,
    ref: Annotated[str | None, typer.Option(help="Git repositories: the branch, tag or commit to index")] = None,
    version: Annotated[
        str | None,
        typer.Option(
            "--version", help="The site's version to file pages under (default: read from the URL's path, or latest)"
        ),
    ] = None,
    refresh_every: Annotated[
        float | None,
        typer.Option(help="Hours between scheduled refreshes of this source by a running server (0: never)"),
    ] = None,
) -> None:
    """Crawl a site, or read local documentation, and index it (recorded as a job: see `crawlrag jobs`)."""
    settings = _settings()
    local = is_local_target(url)
    if not local and (source_id is not None or ref is not None):
        err.print("[red]error:[/red] --source-id and --ref apply to local folders, files, archives and repositories")
        raise typer.Exit(2)
    if local:
        try:  # refused before the model loads; the crawl checks again when it reads
            resolve_target(url, settings.allowed_paths)
        except LocalAccessError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(1) from None
    with _context(settings) as context:
        try:
            options = CrawlOptions.build(
                settings,
                url=url,
                max_depth=max_depth,
                max_pages=max_pages,
                max_concurrent=max_concurrent,
                include=include,
                exclude=exclude,
                chunk_size=chunk_size,
                force=force,
                kind="cli",
                source_id=source_id,
                ref=ref,
                version=version,
                any_local=True,
                refresh_interval_hours=refresh_every,
            )
            job = anyio.run(_crawl, context, options, json_output)
        except (CrawlInputError, StoreError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
    # The interpreter's final garbage collection walks every object the model libraries made: seconds on a busy
    # machine, after the work is done. Exempt them, so the command (and Ctrl-C) ends when the crawl does.
    gc.freeze()
    record, report = job.record, job.report
    if json_output:
        _print_json(_job_summary(job))
    elif report is not None:
        _print_report(report)
    if record.status is JobStatus.CANCELLED:
        err.print(
            f"[yellow]stopped[/yellow] ({record.error}): {record.pages_done} pages handled, {record.chunks_stored} "
            f"chunks stored; what was stored stays searchable (job {record.job_id})"
        )
        _exit_now_if_command(EXIT_INTERRUPTED)
        raise typer.Exit(EXIT_INTERRUPTED)
    if record.status is not JobStatus.COMPLETED:
        err.print(f"[red]error:[/red] crawl {record.status.value}: {record.error or 'no reason recorded'}")
        raise typer.Exit(1)
    if report is not None and report.progress.stored + report.progress.unchanged == 0:
        raise typer.Exit(1)


def _exit_now_if_command(code: int) -> None:
    """End the `crawlrag` process at once: a worker thread abandoned by the stop (an embedding batch in flight)
    would otherwise keep it alive until that batch is done. Everything was stored and printed already."""
    if Path(sys.argv[0]).name == "crawlrag":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _job_view(record: CrawlJob) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "job_id": record.job_id,
        "url": record.url,
        "status": record.status.value,
        "progress": {
            "pages_done": record.pages_done,
            "pages_total": record.pages_total,
            "pages_failed": record.pages_failed,
            "pages_skipped": record.pages_skipped,
            "chunks_stored": record.chunks_stored,
        },
        "worker": record.worker,
        "started": iso(record.started_at),
        "finished": iso(record.finished_at),
        "error": record.error,
    }


@app.command()
def refresh(
    source: Annotated[str | None, typer.Option(help="Only this source (default: every source)")] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Only this version of the source (default: every version)")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the reports as JSON on stdout")] = False,
) -> None:
    """Crawl sources again as they were crawled: new and changed pages are indexed, gone ones removed."""
    settings = _settings()
    done: list[Job] = []
    with _context(settings) as context:
        try:
            plans, problems = refresh_plans(context.store, settings, source, version)
            for problem in problems:
                err.print(f"[yellow]not refreshed:[/yellow] {escape(problem)}")
            for options in plans:
                err.print(f"refreshing {escape(options.source_id or options.url)}")
                done.append(anyio.run(_crawl, context, options, json_output))
                if done[-1].record.status is JobStatus.CANCELLED:
                    break
        except (CrawlInputError, StoreError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
    gc.freeze()
    if json_output:
        _print_json({"refreshes": [_job_summary(job) for job in done], "not_refreshed": problems})
    for job in done:
        record, report = job.record, job.report
        if report is not None and not json_output:
            p = report.progress
            err.print(
                f"{escape(job.options.source_id or record.url)}: [bold]{p.added}[/bold] added, {p.changed} changed, "
                f"{p.unchanged} unchanged, {p.removed} removed, [{'red' if p.failed else 'green'}]{p.failed} "
                f"failed[/] in {report.seconds:.1f}s"
            )
            if report.removal_skipped:
                err.print(f"  [yellow]pages not reached were kept:[/yellow] {escape(report.removal_skipped)}")
            for failure in report.failures[:20]:
                err.print(f"  [red]failed[/red] {failure.url}: {failure.reason}")
        if record.status is not JobStatus.COMPLETED:
            err.print(f"[red]error:[/red] refresh {record.status.value}: {record.error or 'no reason recorded'}")
    if any(job.record.status is JobStatus.CANCELLED for job in done):
        _exit_now_if_command(EXIT_INTERRUPTED)
        raise typer.Exit(EXIT_INTERRUPTED)
    if any(job.record.status is not JobStatus.COMPLETED for job in done):
        raise typer.Exit(1)


@app.command()
def jobs(
    limit: Annotated[int, typer.Option(help="How many jobs, newest first")] = 20,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout")] = False,
) -> None:
    """List recent crawl jobs (of the CLI and of servers on this database)."""
    settings = _settings()
    with _context(settings) as context:
        try:
            records = context.store.list_jobs(max(1, min(limit, 1000)))
        except StoreError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
    if json_output:
        _print_json({"jobs": [_job_view(record) for record in records]})
        return
    table = Table("job", "status", "url", "pages", "chunks", "worker", "started", "error")
    for r in records:
        started = r.started_at.strftime("%Y-%m-%d %H:%M:%S") if r.started_at else "-"
        table.add_row(
            r.job_id[:12], r.status.value, r.url, str(r.pages_done), str(r.chunks_stored), r.worker or "-", started,
            (r.error or "")[:60],
        )  # fmt: skip
    Console().print(table)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for")],
    source: Annotated[str | None, typer.Option(help="Only this source (see `crawlrag sources`)")] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Only this indexed version of --source (default: its newest)")
    ] = None,
    limit: Annotated[int, typer.Option(help="Number of results")] = 5,
    mode: Annotated[str | None, typer.Option(help="hybrid, vector or keyword")] = None,
    rerank: Annotated[bool, typer.Option("--rerank", help="Rerank with the cross-encoder")] = False,
    code: Annotated[bool, typer.Option("--code", help="Search extracted code examples")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout")] = False,
) -> None:
    """Search what has been crawled."""
    settings = _settings(use_reranking=True if rerank else None)
    if mode not in (None, "hybrid", "vector", "keyword"):
        err.print(f"[red]error:[/red] --mode must be hybrid, vector or keyword, not {mode!r}")
        raise typer.Exit(2)
    with _context(settings) as context:
        if context.reranker is not None and rerank:
            context.reranker.start()
        run = context.search.search_code if code else context.search.search
        try:
            response = anyio.run(
                functools.partial(
                    run,
                    query,
                    source_id=source,
                    version=version,
                    match_count=limit,
                    mode=cast(SearchMode | None, mode),
                    rerank=rerank,
                )
            )
        except (SearchInputError, StoreError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        except EmbeddingError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
    if json_output:
        _print_json(response.to_dict())
        return
    if not response.results:
        err.print("no results")
    out = Console(highlight=False)
    for rank, hit in enumerate(response.results, start=1):
        where = hit.section_url if isinstance(hit, SearchHit) else hit.url
        out.print(
            f"[bold]{rank}. {escape(where)}[/bold]  [dim]{escape(hit.headings)}  {escape(hit.version)}  "
            f"score={hit.score:.4f}[/dim]"
        )
        body = hit.content if isinstance(hit, SearchHit) else hit.code
        out.print(body.strip()[:600] + "\n", markup=False)
    if rerank and not response.reranking_applied:
        err.print(f"[yellow]not reranked:[/yellow] {response.reranking_reason}")


@app.command()
def sources(json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout")] = False) -> None:
    """List the crawled sources."""
    settings = _settings()
    with _context(settings) as context:
        found = context.store.list_sources()
    if json_output:
        _print_json({"sources": sites_view(found)})
        return
    table = Table("source", "version", "pages", "chunks", "words", "last crawled", "summary")
    for site in sites_view(found):
        for v in site["versions"]:
            crawled = v["last_crawled"][:16].replace("T", " ") if v["last_crawled"] else "-"
            row = [site["source_id"], v["version"], str(v["pages"]), str(v["chunks"]), str(v["words"]), crawled]
            table.add_row(*row, v["summary"][:80])
    Console().print(table)


@app.command("delete")
def delete_source(
    source: Annotated[str, typer.Argument(help="The source (site) to delete, as `crawlrag sources` lists it")],
    version: Annotated[str | None, typer.Option("--version", help="Only this version (default: all)")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print what was deleted as JSON on stdout")] = False,
) -> None:
    """Delete a source, or one version of it: its pages, chunks, code examples and vectors."""
    settings = _settings()
    with _context(settings) as context:
        try:
            report = run_delete(
                context.store,
                source,
                version,
                yes=yes,
                interactive=sys.stdin.isatty(),
                confirm=lambda question: typer.confirm(question, default=False, err=True),
            )
        except NotConfirmed as exc:
            err.print(f"[yellow]{escape(str(exc))}[/yellow]")
            raise typer.Exit(1) from None
        except (SearchInputError, StoreError) as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(1) from None
    if json_output:
        _print_json(report.to_dict())
        return
    for counts in report.deleted:
        err.print(
            f"deleted {escape(counts.site)} {escape(counts.version)}: {counts.pages} pages, {counts.chunks} chunks, "
            f"{counts.code_examples} code examples"
        )


@app.command()
def reindex(
    source: Annotated[
        str | None, typer.Option(help="Only this source (default: every source on another model)")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout")] = False,
) -> None:
    """Re-embed stored chunks with the configured embedding model, without crawling again."""
    settings = _settings()
    with _context(settings) as context:
        enricher = build_enricher(settings)
        try:
            chosen = sources_to_reindex(context.store, context.embedder, source)
            reindexer = Reindexer(settings, context.store, context.embedder, enricher)
            report = reindexer.run(chosen, on_source=lambda sid: err.print(f"re-embedding {escape(sid)}"))
        except (StoreError, EmbeddingError) as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
        finally:
            if enricher is not None:
                enricher.close()
    if json_output:
        _print_json(report.to_dict())
    elif not report.sources:
        err.print(f"every source already uses {report.model} ({report.dimension} dimensions)")
    else:
        err.print(
            f"re-embedded {len(report.sources)} source(s), {report.chunks} chunks and {report.code_examples} code "
            f"examples ({report.embedded} embedded) with {report.model} in {report.seconds:.1f}s"
        )


app.command()(serve)
app.command()(worker)
app.command()(health)

db_app = typer.Typer(no_args_is_help=True, help="Database maintenance.")
app.add_typer(db_app, name="db")


@db_app.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the schema of the store DATABASE_URL names (also done automatically on start)."""
    settings = _settings()
    try:
        version = migrate_store(settings)
    except StoreError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    err.print(f"schema is up to date (version {version})")


def main() -> None:
    app()
