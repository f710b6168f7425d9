"""Fixtures for local sources: settings whose ALLOWED_PATHS is one folder of the test's tmp_path, and indexing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from local_index import Indexed

from crawlrag.config import Settings
from crawlrag.embeddings import LocalEmbedder


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    root = tmp_path / "allowed"
    root.mkdir()
    return root.resolve()


@pytest.fixture
def local_settings(make_settings: Callable[..., Settings], allowed: Path) -> Settings:
    return make_settings(allowed_paths=[str(allowed)], browser="never")


@pytest.fixture
def indexed(local_settings: Settings, embedder: LocalEmbedder) -> Iterator[Indexed]:
    result = Indexed(local_settings, embedder)
    yield result
    result.store.close()
