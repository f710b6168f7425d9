"""The optimised ONNX graph on a tiny random cross-encoder: same scores as the plain export, or not used."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from crawlrag.onnx_export import (
    OPTIMIZED_FILES,
    cache_entry,
    ensure_exported,
    feed,
    open_session,
    open_tokenizer,
    read_meta,
)
from crawlrag.onnx_optimize import ensure_optimized, first_token_last_layer

PAIRS = [
    ("read a json file", "import json then call json load on the open file to read data " * 4),
    ("csv", "write bytes to a csv file with the csv module"),
    ("time", "time and date values"),
]


def logits(file: Path, entry: Path) -> np.ndarray:
    meta = read_meta(entry)
    encodings = open_tokenizer(entry, meta, 256).encode_batch(PAIRS)  # padded: the mask must be honoured
    return np.asarray(open_session(file).run(["logits"], feed(encodings, meta["inputs"]))[0])


def test_optimised_graph_is_fused_pruned_and_exact(tiny_model_dir: Path, tmp_path: Path) -> None:
    entry = cache_entry(tiny_model_dir, tmp_path)
    plain = ensure_exported(tiny_model_dir, entry, "sequence-classification", "float32")
    optimised = ensure_exported(tiny_model_dir, entry, "sequence-classification", "float32", optimize=True)
    assert optimised.name == OPTIMIZED_FILES["float32"]
    graph = onnx.load(str(optimised)).graph
    assert sum(node.op_type == "Attention" for node in graph.node) == 2  # both layers fused
    assert any(node.name.endswith("_first_slice") for node in graph.node)  # last layer: first token only
    assert np.max(np.abs(logits(optimised, entry) - logits(plain, entry))) < 1e-4

    int8 = ensure_exported(tiny_model_dir, entry, "sequence-classification", "int8", optimize=True)
    assert int8.name == OPTIMIZED_FILES["int8"]
    assert np.corrcoef(logits(int8, entry).ravel(), logits(plain, entry).ravel())[0, 1] > 0.95


def test_optimiser_that_changes_outputs_is_not_used(tiny_model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy)
    entry = cache_entry(copy, tmp_path / "cache")
    plain = ensure_exported(copy, entry, "sequence-classification", "float32")
    meta = read_meta(entry)
    meta["config"]["num_attention_heads"] = 4  # a wrong head count: the fused attention computes something else
    (entry / "meta.json").write_text(json.dumps(meta))
    target, failed = entry / "opt.onnx", entry / "opt.failed"
    assert ensure_optimized(entry, "sequence-classification", plain, target, failed) is None
    assert failed.exists() and not target.exists()
    # The marker spares later starts the attempt; the plain export (and int8 from it) is used.
    assert ensure_optimized(entry, "sequence-classification", plain, target, failed) is None


def test_first_token_needs_an_attention_kernel(tiny_model_dir: Path, tmp_path: Path) -> None:
    entry = cache_entry(tiny_model_dir, tmp_path)
    plain = ensure_exported(tiny_model_dir, entry, "sequence-classification", "float32")
    assert first_token_last_layer(onnx.load(str(plain))) is None


@pytest.mark.parametrize("precision", ["int8", "int8-full"])
def test_plain_export_keeps_its_files(tiny_model_dir: Path, tmp_path: Path, precision: str) -> None:
    entry = cache_entry(tiny_model_dir, tmp_path)
    file = ensure_exported(tiny_model_dir, entry, "sequence-classification", precision)
    assert not file.name.startswith("model.opt")  # the embedder's default path is unchanged
