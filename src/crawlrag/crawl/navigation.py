"""Which navigations a page being rendered may make: its own document, and nothing else.

A page that navigates elsewhere (`location.href = ...`, a form, a meta refresh, a clicked link) is no longer the
page the crawler vetted, and its destination may be an address the crawler must not reach. The browser's
request interception refuses such a navigation before Chromium sends it anywhere, and the render it belongs to
ends with `NavigatedAwayError` instead of returning whatever error page Chromium shows. Frames navigate freely:
each of their requests is checked like any subresource. Popups are pages crawlrag did not open, so their
navigations are refused (the render that opened them goes on).

crawl4ai gives each render's hooks the `shared_data` of its run config; `RenderScope` travels there from
`render()` to the page, where the interception (which runs in Playwright's own task) finds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_KEY = "crawlrag_render_scope"
_PAGE_ATTRIBUTE = "_crawlrag_render_scope"
_MAX_SHOWN_URL = 200


class NavigatedAwayError(RuntimeError):
    """The rendered page tried to navigate elsewhere (a script, a form, a refresh); the render was stopped."""


@dataclass(slots=True)
class RenderScope:
    """One render: the document its page loaded first is the only one it may show."""

    document: str | None = None  # the URL of the page's first navigation, which the crawler asked for
    navigated_to: list[str] = field(default_factory=list)  # navigations away from it, all refused

    def shared_data(self) -> dict[str, Any]:
        """For `CrawlerRunConfig(shared_data=...)`."""
        return {_KEY: self}

    @staticmethod
    def attach(page: Any, config: Any) -> None:
        """Called from crawl4ai's `on_page_context_created` hook, before the page's first navigation."""
        setattr(page, _PAGE_ATTRIBUTE, (getattr(config, "shared_data", None) or {}).get(_KEY))

    def raise_if_navigated_away(self) -> None:
        if self.navigated_to:
            target = self.navigated_to[0][:_MAX_SHOWN_URL]
            raise NavigatedAwayError(f"the page tried to navigate away to {target}; rendering stopped")


def may_navigate(request: Any) -> bool:
    """Whether a Playwright navigation request may load; a refused one is recorded on its page's scope.

    The page itself may load its first navigation (the crawler's own) and reloads of that document.
    """
    try:
        frame = request.frame
    except Exception:  # a popup's first request comes before its frame exists
        return False
    if frame.parent_frame is not None:
        return True
    scope: RenderScope | None = getattr(frame.page, _PAGE_ATTRIBUTE, None)
    if scope is None:  # a page crawlrag did not open: a popup
        return False
    document = request.url.split("#", 1)[0]
    if scope.document is None:
        scope.document = document
        return True
    if request.method == "GET" and document == scope.document:
        return True
    scope.navigated_to.append(request.url)
    return False
