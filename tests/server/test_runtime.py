"""The runtime's own lifecycle: a failed start leaves nothing behind, and a context can be served again."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from server_helpers import make_context

from crawlrag.config import Settings
from crawlrag.crawl import Crawler
from crawlrag.embeddings import LocalEmbedder
from crawlrag.server.runtime import NotStartedError, ServerRuntime


class BrokenCrawler(Crawler):
    async def __aenter__(self) -> Crawler:
        raise OSError("no network stack")


async def test_a_failed_start_cleans_up_and_the_context_can_start_again(
    server_settings: Callable[..., Settings], embedder: LocalEmbedder
) -> None:
    settings = server_settings()
    context = make_context(settings, embedder)
    try:
        with pytest.raises(OSError, match="no network stack"):
            async with ServerRuntime(settings, context=context, crawler_factory=BrokenCrawler):
                pass

        runtime = ServerRuntime(settings, context=context)
        with pytest.raises(NotStartedError):
            _ = runtime.context
        async with runtime:  # metrics register again in the same registry
            assert runtime.started and (await runtime.health())["status"] == "ok"
        assert not runtime.started
        assert (await runtime.health())["status"] == "error"
    finally:
        context.close()
