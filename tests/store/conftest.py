"""Store fixtures: every test using `store` runs once against SQLite and once against PostgreSQL + pgvector.

The `backend` and `postgres_*` fixtures live in tests/conftest.py, shared with the end-to-end tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from crawlrag.store.base import Store
from crawlrag.store.postgres import PostgresStore
from crawlrag.store.sqlite import SQLiteStore

# Higher than the number of rows any shared test stores, so an HNSW scan visits every row and the
# unfiltered recall checks are exact; the PostgreSQL-specific tests exercise the default.
TEST_EF_SEARCH = 1000


@pytest.fixture
def open_store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens another store instance on the same database, as a second server process would."""
    opened: list[Store] = []
    if backend == "sqlite":
        path = tmp_path / "crawlrag.db"

        def make() -> Store:
            return SQLiteStore(path)
    else:
        url = request.getfixturevalue("postgres_url")

        def make() -> Store:
            return PostgresStore(url, hnsw_ef_search=TEST_EF_SEARCH, pool_max_size=4)

    def tracked() -> Store:
        opened.append(make())
        return opened[-1]

    yield tracked
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    return open_store()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240611)
