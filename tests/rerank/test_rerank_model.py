"""The real loading path on a tiny random cross-encoder: torch and ONNX backends, end to end, event loop."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from rerank_fakes import FakeRuntime

from crawlrag.config import Settings
from crawlrag.rerank import LocalReranker
from crawlrag.rerank.backends import TorchBackend, scores_to_list
from crawlrag.rerank.errors import ModelLoadError
from crawlrag.rerank.hub import HubProbe, ModelSource
from crawlrag.rerank.onnx_backend import OnnxBackend, activate, activation_of, cache_entry

QUERY = "how to read a json file in python"
PASSAGES = [
    "open the file and read lines of text, then decode json data into a dict",
    "the berlin population is large and the city has many museums",
    "an async event loop runs each task in one thread",
    "write bytes to a csv file with the csv module",
    "the cell organelle produces energy",
    "import json then call json load on the open file to read data",
    "a tuple is like a list but it cannot change",
    "time and date values, string to number conversion",
] * 2


def source(directory: Path) -> ModelSource:
    return ModelSource(str(directory), str(directory), local=True)


def ranks(values: list[float]) -> np.ndarray:
    return np.argsort(np.argsort(values)).astype(float)


def spearman(a: list[float], b: list[float]) -> float:
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


@pytest.fixture(scope="module")
def torch_scores(tiny_model_dir: Path) -> list[float]:
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(tiny_model_dir), local_files_only=True, max_length=256)
    return [float(s) for s in model.predict([(QUERY, p) for p in PASSAGES], show_progress_bar=False)]


def test_torch_backend_matches_cross_encoder(tiny_model_dir: Path, torch_scores: list[float]) -> None:
    backend = TorchBackend.load(source(tiny_model_dir), "cpu", "float32", 256)
    scores = backend.predict([(QUERY, p) for p in PASSAGES])
    assert scores == pytest.approx(torch_scores, abs=1e-6)
    assert len(set(np.round(scores, 4))) > 3  # the tiny model's scores really differ between passages
    backend.close()


def test_torch_backend_caps_max_length_at_model_positions(tiny_model_dir: Path) -> None:
    backend = TorchBackend.load(source(tiny_model_dir), "cpu", "bfloat16", 4096)
    assert backend._model.max_seq_length == 512 and backend.precision == "bfloat16"
    long_passage = " ".join(["python file"] * 2000)
    assert len(backend.predict([(QUERY, long_passage)])) == 1


def test_onnx_fp32_matches_torch_and_int8_agrees(
    tiny_model_dir: Path, torch_scores: list[float], tmp_path: Path
) -> None:
    fp32 = OnnxBackend.load(tiny_model_dir, tmp_path, precision="float32", max_length=256)
    pairs = [(QUERY, p) for p in PASSAGES]
    assert fp32.predict(pairs) == pytest.approx(torch_scores, abs=1e-5)
    assert fp32.predict([]) == []

    int8 = OnnxBackend.load(tiny_model_dir, tmp_path, precision="int8", max_length=256)
    quantized = int8.predict(pairs)
    assert int8.precision == "int8"
    assert np.max(np.abs(np.array(quantized) - torch_scores)) < 0.05
    assert spearman(quantized, torch_scores) > 0.9

    entry = cache_entry(tiny_model_dir, tmp_path)
    # The plain export, the optimised graph (fused, first token in the last layer) and int8 made from it.
    assert {p.name for p in entry.iterdir()} == {
        "model.onnx",
        "model.opt.onnx",
        "model.opt.int8.onnx",
        "tokenizer.json",
        "meta.json",
    }
    exported_at = (entry / "model.onnx").stat().st_mtime_ns
    started = time.perf_counter()
    again = OnnxBackend.load(tiny_model_dir, tmp_path, precision="int8", max_length=256)
    assert time.perf_counter() - started < 2  # cached: no second export
    assert (entry / "model.onnx").stat().st_mtime_ns == exported_at
    assert again.predict(pairs) == pytest.approx(quantized, abs=1e-7)
    fp32.close()


def test_cache_key_follows_model_files(tiny_model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    first = cache_entry(copy, tmp_path / "cache")
    config = copy / "config.json"
    config.write_text(config.read_text() + "\n")
    assert cache_entry(copy, tmp_path / "cache") != first
    assert cache_entry(copy, tmp_path / "cache").name.startswith("copy-")


def test_onnx_export_errors_propagate(tiny_model_dir: Path, tmp_path: Path) -> None:
    slow = tmp_path / "slow"
    shutil.copytree(tiny_model_dir, slow)
    (slow / "tokenizer.json").unlink()
    config = json.loads((slow / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "NoSuchTokenizer"
    (slow / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(Exception):  # noqa: B017 - transformers' own error for an unknown tokenizer class
        OnnxBackend.load(slow, tmp_path / "cache", precision="float32", max_length=64)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, "sigmoid"),
        ({"id2label": {"0": "a", "1": "b"}}, "identity"),
        ({"sentence_transformers": {"activation_fn": "torch.nn.modules.linear.Identity"}}, "identity"),
        ({"sbert_ce_default_activation_function": "torch.nn.modules.activation.Tanh"}, "tanh"),
        ({"sentence_transformers": {"activation_fn": "mypackage.Custom"}, "num_labels": 1}, "sigmoid"),
    ],
)
def test_activation_of(config: dict[str, object], expected: str) -> None:
    assert activation_of(config) == expected


def test_unsupported_activation() -> None:
    with pytest.raises(ModelLoadError, match="use RERANKING_BACKEND=torch"):
        activation_of({"sentence_transformers": {"activation_fn": "torch.nn.modules.activation.Softmax"}})


def test_activate_and_scores_to_list() -> None:
    logits = np.array([[-1000.0], [0.0], [2.0]], dtype=np.float32)
    assert activate(logits, "sigmoid").reshape(-1).tolist() == pytest.approx([0.0, 0.5, 0.8807970779])
    assert activate(logits, "tanh")[2, 0] == pytest.approx(np.tanh(2.0))
    assert activate(logits, "identity") is logits
    with pytest.raises(ValueError, match="3 labels"):
        scores_to_list(np.zeros((2, 3)))


@pytest.mark.parametrize("backend", ["torch", "onnx"])
async def test_local_reranker_end_to_end(
    rerank_settings: Callable[..., Settings],
    tiny_model_dir: Path,
    torch_scores: list[float],
    tmp_path: Path,
    backend: str,
) -> None:
    settings = rerank_settings(
        reranking_model_name=str(tiny_model_dir),
        reranking_backend=backend,
        gpu_precision="float32",
        reranking_max_length=256,
    )
    reranker = LocalReranker(
        settings, device_runtime=FakeRuntime(), hub_probe=HubProbe(offline=True, endpoint="x"), cache_dir=tmp_path
    )
    assert await reranker.wait_ready(60), reranker.status()
    scores = await reranker.rerank(QUERY, PASSAGES)
    assert scores == pytest.approx(torch_scores, abs=1e-5)
    status = reranker.status()
    assert (status["state"], status["backend"], status["precision"]) == ("ready", backend, "float32")
    assert status["load_count"] == 1 and status["validated"] is True and status["load_seconds"] > 0
    reranker.close()


async def test_event_loop_stays_responsive_during_a_long_rerank(
    rerank_settings: Callable[..., Settings], tiny_model_dir: Path
) -> None:
    settings = rerank_settings(
        reranking_model_name=str(tiny_model_dir), reranking_max_length=512, reranking_batch_size=64
    )
    reranker = LocalReranker(settings, device_runtime=FakeRuntime(), hub_probe=HubProbe(offline=True, endpoint="x"))
    assert await reranker.wait_ready(60)
    passages = [(" ".join(PASSAGES) + f" {i}")[:2000] for i in range(800)]
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    scores = await reranker.rerank(QUERY, passages)
    elapsed = time.perf_counter() - started
    task.cancel()
    assert len(scores) == len(passages)
    assert elapsed > 0.3, "the rerank must be long enough to show anything"
    # A blocked loop shows one gap as long as the whole rerank; bounds are loose for a busy CI machine.
    assert max(gaps) < max(0.25, elapsed / 4), (max(gaps), elapsed)
    assert len(gaps) >= elapsed / 0.01 * 0.25, (len(gaps), elapsed)
    reranker.close()


def test_token_lengths_agree_between_backends_and_truncate(tiny_model_dir: Path, tmp_path: Path) -> None:
    pairs = [(QUERY, p) for p in PASSAGES[:4]] + [(QUERY, " ".join(["python file"] * 400))]
    torch_backend = TorchBackend.load(source(tiny_model_dir), "cpu", "float32", 64)
    onnx_backend = OnnxBackend.load(tiny_model_dir, tmp_path, precision="float32", max_length=64)
    lengths = torch_backend.token_lengths(pairs)
    assert lengths == onnx_backend.token_lengths(pairs)
    assert lengths[-1] == 64 and all(0 < n < 64 for n in lengths[:-1])
    # Scoring in token-budget batches gives the scores of one big batch.
    from crawlrag.rerank.autotune import run_batched

    assert run_batched(onnx_backend, pairs, 2, 128) == pytest.approx(onnx_backend.predict(pairs), abs=1e-5)


def test_onnx_int8_full_quantises_everything(tiny_model_dir: Path, torch_scores: list[float], tmp_path: Path) -> None:
    import onnx

    from crawlrag.onnx_export import OPTIMIZED_FILES, sensitive_nodes

    full = OnnxBackend.load(tiny_model_dir, tmp_path, precision="int8-full", max_length=256)
    assert full.precision == "int8-full"
    assert spearman(full.predict([(QUERY, p) for p in PASSAGES]), torch_scores) > 0.8
    entry = cache_entry(tiny_model_dir, tmp_path)
    kept = sensitive_nodes(onnx.load(str(entry / OPTIMIZED_FILES["float32"])))
    # Per layer the FFN down-projection, plus the pooler and classifier Gemms.
    assert len([n for n in kept if "output/dense" in n]) == 2 and len(kept) == 4
    full_graph = onnx.load(str(entry / OPTIMIZED_FILES["int8-full"]))
    assert not {node.name for node in full_graph.graph.node if node.op_type in ("MatMul", "Gemm")} & set(kept)
