"""The UI's pages and form actions. Each handler gets the request, its session and the posted form."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from crawlrag.crawl import CrawlInputError
from crawlrag.pipeline.jobs import JobError
from crawlrag.search import SearchInputError, SearchMode
from crawlrag.server.arguments import ArgumentError, clean_source
from crawlrag.server.runtime import NotStartedError
from crawlrag.server.ui.backend import SEARCH_MODES, SourceRow, UiBackend
from crawlrag.server.ui.guard import Form, Guard, safe_next
from crawlrag.server.ui.render import Renderer, number, when
from crawlrag.server.ui.security import COOKIE_NAME, Session
from crawlrag.store import StoreError

# Errors whose message is written for the person who filled in the form.
FORM_ERRORS = (ArgumentError, CrawlInputError, SearchInputError, JobError, StoreError, NotStartedError)
DEFAULT_RESULTS = 10


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the Sources table; a new one (e.g. a source's version) is one more entry in SOURCE_COLUMNS."""

    label: str
    cell: Callable[[SourceRow], str]
    numeric: bool = False


SOURCE_COLUMNS = (
    Column("Version", lambda row: row.info.version),
    Column("Pages", lambda row: number(row.info.pages), numeric=True),
    Column("Chunks", lambda row: number(row.info.chunks), numeric=True),
    Column("Code examples", lambda row: number(row.info.code_examples), numeric=True),
    Column("Last crawl", lambda row: when(row.info.last_crawled)),
)


def see_other(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


class Pages:
    def __init__(self, backend: UiBackend, renderer: Renderer, guard: Guard) -> None:
        self.backend = backend
        self.renderer = renderer
        self.guard = guard

    def _render(self, request: Request, session: Session, template: str, **context: Any) -> Response:
        return self.renderer.page(request, session, template, **context)

    # --- sources ----------------------------------------------------------------------------------------------

    async def sources(self, request: Request, session: Session, form: Form, *, error: str | None = None) -> Response:
        rows = await self.backend.sources()
        deleted = request.query_params.get("deleted")
        return self._render(
            request,
            session,
            "sources.html",
            rows=rows,
            columns=SOURCE_COLUMNS,
            deleted=deleted,
            error=error,
            status=400 if error else 200,
        )

    async def confirm_delete(self, request: Request, session: Session, form: Form) -> Response:
        source = request.query_params.get("source", "")
        rows = {row.source_id: row for row in await self.backend.sources()}
        if source not in rows:
            return await self.sources(request, session, form, error=f"there is no source {source[:100]!r}")
        return self._render(request, session, "confirm_delete.html", row=rows[source])

    async def delete(self, request: Request, session: Session, form: Form) -> Response:
        source = form.get("source", "")
        try:
            await self.backend.delete_source(source)
        except FORM_ERRORS as exc:
            return await self.sources(request, session, form, error=str(exc))
        return see_other(f"/?deleted={quote(source, safe='')}")

    async def refresh(self, request: Request, session: Session, form: Form) -> Response:
        try:
            job_id = await self.backend.refresh_source(form.get("source", ""))
        except FORM_ERRORS as exc:
            return await self.sources(request, session, form, error=str(exc))
        return see_other(f"/jobs?started={job_id}")

    # --- crawls and jobs --------------------------------------------------------------------------------------

    async def crawl_form(self, request: Request, session: Session, form: Form, *, error: str | None = None) -> Response:
        settings = self.backend.settings
        values = {"url": "", "max_depth": str(settings.max_depth), "max_pages": str(settings.max_pages)}
        values |= {"include": "", "exclude": ""}
        values |= {name: form[name] for name in values if name in form}  # what was sent, when it is shown again
        return self._render(
            request,
            session,
            "crawl.html",
            values=values,
            limits={"max_pages": settings.max_pages, "max_depth": 50},
            error=error,
            status=400 if error else 200,
        )

    async def start_crawl(self, request: Request, session: Session, form: Form) -> Response:
        try:
            job_id = await self.backend.start_crawl(
                form.get("url", ""),
                form.get("max_depth", ""),
                form.get("max_pages", ""),
                form.get("include", ""),
                form.get("exclude", ""),
            )
        except FORM_ERRORS as exc:
            return await self.crawl_form(request, session, form, error=str(exc))
        return see_other(f"/jobs?started={job_id}")

    async def jobs(self, request: Request, session: Session, form: Form, *, error: str | None = None) -> Response:
        return self._render(
            request,
            session,
            "jobs.html",
            jobs=await self.backend.jobs(),
            started=request.query_params.get("started"),
            error=error,
            status=409 if error else 200,
        )

    async def jobs_json(self, request: Request, session: Session, form: Form) -> Response:
        return JSONResponse({"jobs": [job.to_json() for job in await self.backend.jobs()]})

    async def cancel(self, request: Request, session: Session, form: Form) -> Response:
        try:
            await self.backend.cancel(form.get("job_id", ""))
        except FORM_ERRORS as exc:
            return await self.jobs(request, session, form, error=str(exc))
        return see_other("/jobs")

    async def resume(self, request: Request, session: Session, form: Form) -> Response:
        try:
            job_id = await self.backend.resume(form.get("job_id", ""))
        except FORM_ERRORS as exc:
            return await self.jobs(request, session, form, error=str(exc))
        return see_other(f"/jobs?started={job_id}")

    # --- search and health ------------------------------------------------------------------------------------

    async def search(self, request: Request, session: Session, form: Form) -> Response:
        params = request.query_params
        query = params.get("query", "")
        mode = params.get("mode", "")
        if mode not in SEARCH_MODES:
            mode = self.backend.runtime.context.search.default_mode()
        source = clean_source(params.get("source"))
        searched = "query" in params
        rerank_available = self.backend.reranker_enabled
        rerank = rerank_available and (params.get("rerank") == "on" or not searched)
        limit_text = params.get("limit", str(DEFAULT_RESULTS))
        outcome, error = None, None
        if searched:
            try:
                limit = int(limit_text) if limit_text.isdigit() else -1
                outcome = await self.backend.search(
                    query, mode=cast(SearchMode, mode), source_id=source, rerank=rerank, limit=limit
                )
            except FORM_ERRORS as exc:
                error = str(exc)
        return self._render(
            request,
            session,
            "search.html",
            query=query,
            mode=mode,
            modes=SEARCH_MODES,
            source=source or "",
            sources=await self.backend.source_ids(),
            rerank=rerank,
            rerank_available=rerank_available,
            limit=limit_text,
            max_limit=self.backend.settings.max_match_count,
            outcome=outcome,
            error=error,
            status=400 if error else 200,
        )

    async def health(self, request: Request, session: Session, form: Form) -> Response:
        view = await self.backend.health()
        return self._render(request, session, "health.html", health=view.document, latency=view.latency)

    # --- login ------------------------------------------------------------------------------------------------

    async def login_form(self, request: Request, session: Session, form: Form, *, error: str | None = None) -> Response:
        target = safe_next(form.get("next") or request.query_params.get("next"))
        if session.authenticated and error is None:
            return see_other(target)
        return self._render(request, session, "login.html", next=target, error=error, status=401 if error else 200)

    async def login(self, request: Request, session: Session, form: Form) -> Response:
        keeper = self.guard.keeper
        if not keeper.token_matches(form.get("token", "")):
            await self.guard.wrong_token_pause()
            return await self.login_form(request, session, form, error="That token is not the server's MCP_AUTH_TOKEN.")
        response = see_other(safe_next(form.get("next")))
        keeper.set_cookie(response, request, keeper.new(authenticated=True))  # a new session id: no fixation
        return response

    async def logout(self, request: Request, session: Session, form: Form) -> Response:
        response = see_other("/login" if self.guard.keeper.login_required else "/")
        response.delete_cookie(COOKIE_NAME, path="/")
        return response
