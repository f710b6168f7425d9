"""The UI's session, redirect and latency helpers on their own."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry, Histogram
from pydantic import SecretStr

from crawlrag.server.ui.guard import safe_next
from crawlrag.server.ui.latency import latency_rows, quantile
from crawlrag.server.ui.security import SessionKeeper


def test_sessions_are_signed_and_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    keeper = SessionKeeper(SecretStr("the-token"))
    session = keeper.new(authenticated=True)
    value = keeper.encode(session)
    assert "the-token" not in value
    assert keeper.decode(value) == session
    body, _, signature = value.rpartition(".")
    assert keeper.decode(body.replace(".1", ".0") + "." + signature) is None  # the flag is signed
    assert keeper.decode(value[:-1] + ("0" if value[-1] != "0" else "1")) is None
    assert keeper.decode(SessionKeeper(SecretStr("another")).encode(session)) is None  # a changed token logs out
    assert not keeper.anonymous().authenticated
    assert keeper.csrf_ok(session, keeper.csrf_token(session))
    assert not keeper.csrf_ok(session, keeper.csrf_token(keeper.new(authenticated=True)))
    monkeypatch.setattr(time, "time", lambda: session.expires + 1)
    assert keeper.decode(value) is None


def test_without_a_token_every_session_may_use_the_ui() -> None:
    keeper = SessionKeeper(None)
    assert not keeper.login_required and keeper.token_matches("anything")
    session = keeper.anonymous()
    assert session.authenticated and keeper.decode(keeper.encode(session)) == session


@pytest.mark.parametrize(
    ("target", "expected"),
    [("/jobs", "/jobs"), ("/search?query=a", "/search?query=a"), ("//evil.example/", "/"), ("/\\evil", "/"),
     ("https://evil.example/", "/"), ("", "/"), (None, "/")],
)  # fmt: skip
def test_login_only_redirects_to_this_server(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_percentiles_from_histogram_buckets() -> None:
    assert quantile([(1.0, 0.0), (float("inf"), 0.0)], 0.5) is None
    # 10 observations in (0, 0.1], 10 in (0.1, 0.2]: the median is the top of the first bucket.
    buckets = [(0.1, 10.0), (0.2, 20.0), (float("inf"), 20.0)]
    assert quantile(buckets, 0.5) == pytest.approx(0.1)
    assert quantile(buckets, 0.95) == pytest.approx(0.19)
    registry = CollectorRegistry()
    histogram = Histogram("crawlrag_embedding_duration_seconds", "t", ["kind"], registry=registry)
    for _ in range(4):
        histogram.labels("query").observe(0.02)
    (row,) = latency_rows(registry)
    assert row.what == "Embedding query" and row.count == 4
    assert row.p50_ms is not None and 10 <= row.p50_ms <= 25
