"""Finding a model offline: local paths, the HF cache, and a fast, clear failure when the hub is unreachable."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rerank_fakes import FakeRuntime

from crawlrag.config import Settings
from crawlrag.rerank import LocalReranker
from crawlrag.rerank.errors import HubUnreachableError, ModelLoadError
from crawlrag.rerank.hub import HubProbe, ModelSource, local_directory, looks_like_hub_id, resolve_model_source

HUB_ID = "cross-encoder/ms-marco-MiniLM-L-6-v2"


def offline() -> HubProbe:
    return HubProbe(offline=True, endpoint="https://huggingface.co")


def fake_hf_cache(root: Path, repo_id: str) -> Path:
    """The layout huggingface_hub writes: models--org--name/{refs/main, snapshots/<commit>/...}."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def test_local_directory_is_used_as_is(tmp_path: Path) -> None:
    source = resolve_model_source(str(tmp_path), offline())
    assert source == ModelSource(str(tmp_path), str(tmp_path.resolve()), local=True)
    assert local_directory(source) == tmp_path.resolve()


def test_missing_path_is_a_permanent_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist") as caught:
        resolve_model_source(str(tmp_path / "nope" / "model"), offline())
    assert not caught.value.transient


def test_hub_id_offline_fails_with_instructions() -> None:
    with pytest.raises(HubUnreachableError) as caught:
        resolve_model_source(
            HUB_ID, HubProbe(offline=True, endpoint="https://huggingface.co", cache_dir=Path("/nonexistent"))
        )
    message = str(caught.value)
    assert message.startswith(f"model {HUB_ID} is not a local directory and the Hugging Face hub is not reachable")
    assert "RERANKING_MODEL_NAME" in message and not caught.value.transient


def test_hub_id_found_in_the_local_cache(tmp_path: Path) -> None:
    snapshot = fake_hf_cache(tmp_path, HUB_ID)
    probe = HubProbe(offline=True, endpoint="https://huggingface.co", cache_dir=tmp_path)
    assert resolve_model_source(HUB_ID, probe) == ModelSource(HUB_ID, str(snapshot), local=True)


def test_hub_id_passes_through_when_online(tmp_path: Path) -> None:
    class Online(HubProbe):
        def _connects(self) -> bool:
            return True

    probe = Online(offline=False, endpoint="https://huggingface.co", cache_dir=tmp_path)
    assert resolve_model_source(HUB_ID, probe) == ModelSource(HUB_ID, HUB_ID, local=False)


def test_looks_like_hub_id() -> None:
    assert looks_like_hub_id(HUB_ID) and looks_like_hub_id("bert-base-uncased")
    assert not looks_like_hub_id("./models/x") and not looks_like_hub_id("/abs/path")
    assert not looks_like_hub_id("a/b/c") and not looks_like_hub_id("org/..x")


def test_tcp_probe_refused_port_is_fast() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
    # Nothing listens on the port any more: the connect is refused at once.
    started = time.monotonic()
    probe = HubProbe(offline=False, endpoint=f"http://127.0.0.1:{port}", timeout=1.0)
    assert probe.reachable() is False and probe.reachable() is False
    assert time.monotonic() - started < 2


def test_tcp_probe_listening_port_is_reachable() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        probe = HubProbe(offline=False, endpoint=f"http://127.0.0.1:{server.getsockname()[1]}")
        assert probe.reachable() is True


def test_tcp_probe_is_bounded_when_resolution_hangs() -> None:
    class Hanging(HubProbe):
        def _open(self, host: str, port: int) -> None:
            time.sleep(3)  # name resolution without DNS: create_connection's timeout does not cover it

    started = time.monotonic()
    assert Hanging(offline=False, endpoint="https://huggingface.co", timeout=0.2).reachable() is False
    assert time.monotonic() - started < 1.5


def test_defaults_come_from_huggingface_hub() -> None:
    from huggingface_hub import constants

    probe = HubProbe()
    assert probe.offline == constants.HF_HUB_OFFLINE and probe.endpoint == constants.ENDPOINT


def test_cache_lookup_errors_mean_not_cached(tmp_path: Path) -> None:
    assert HubProbe(offline=True, endpoint="x", cache_dir=tmp_path).cached_snapshot("bad id with spaces") is None


def test_download_error_is_classified(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(repo_id: str) -> str:
        raise TimeoutError("read timed out")

    monkeypatch.setattr("huggingface_hub.snapshot_download", fail)
    with pytest.raises(ModelLoadError, match="download of org/model failed") as caught:
        local_directory(ModelSource("org/model", "org/model", local=False))
    assert caught.value.transient


def test_download_returns_the_snapshot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("huggingface_hub.snapshot_download", lambda repo_id: str(tmp_path))
    assert local_directory(ModelSource("org/model", "org/model", local=False)) == tmp_path


async def test_offline_hub_id_fails_fast_end_to_end(rerank_settings: Callable[..., Settings]) -> None:
    """The real loader and lifecycle, a hub id, no network: FAILED with the reason in well under 5 s."""
    settings = rerank_settings(reranking_model_name=HUB_ID, reranking_load_retries=3)
    reranker = LocalReranker(
        settings,
        device_runtime=FakeRuntime(),
        hub_probe=HubProbe(offline=True, endpoint="https://huggingface.co", cache_dir=Path("/nonexistent")),
    )
    started = time.monotonic()
    assert await reranker.wait_ready(10) is False
    elapsed = time.monotonic() - started
    status = reranker.status()
    assert elapsed < 5, elapsed
    assert status["state"] == "failed" and "Hugging Face hub is not reachable" in status["reason"]
    reranker.close()
