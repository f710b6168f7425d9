from __future__ import annotations

from collections.abc import Iterator

import pytest
from provider_peers import Peer, serve_peer


@pytest.fixture
def peer() -> Iterator[Peer]:
    with serve_peer() as running:
        yield running


@pytest.fixture
def sleeps() -> list[float]:
    """The pauses a RetryPolicy asked for, recorded instead of slept."""
    return []
