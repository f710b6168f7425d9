"""The optimised fp32 graph `onnx_export` quantises from when asked to: fused kernels, and for a classifier only
the first token computed in the last layer.

1. Fusion: ONNX Runtime's transformer optimizer (model type "bert", heads and width from the model's config)
   turns each layer's attention into one `Attention` kernel and LayerNorm+residual and bias+GELU into fused
   ops: fewer passes over the activations, same arithmetic.
2. First token only (sequence classifiers): the head reads the last layer's output at position 0, so after the
   last attention kernel every later node (output projection, residual, FFN, LayerNorm) is fed a slice of
   that one position. The attention itself still reads every token's keys and values, so the result is exact.

Each step is kept only if the rewritten graph gives the same outputs as the one before it on a padded sample
batch; otherwise the plain export is used and a marker file stops the attempt being repeated at every start.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Fusion reorders float sums; more than this (relative to the outputs' scale) means a rewrite changed the maths.
TOLERANCE = 1e-3
_SAMPLE = (
    ("how do I read a file", "open() returns a file object; read() returns its whole content as a string."),
    ("timeout", "asyncio.wait_for(aw, timeout) waits for the awaitable with a timeout " * 6),
    ("x", "y"),
)


def ensure_optimized(entry: Path, kind: str, fp32: Path, target: Path, failed: Path) -> Path | None:
    """`target` (written once), or None when the optimiser is missing or changes the outputs."""
    if target.exists():
        return target
    if failed.exists():
        return None
    from crawlrag.onnx_export import write_atomic

    try:
        model, notes = optimized_model(entry, kind, fp32)
    except Exception as exc:  # an optimiser that cannot handle the graph only costs the speed-up
        log.info("ONNX graph optimisation failed for %s (%s); using the plain export", fp32, exc)
        model, notes = None, [f"failed: {exc}"]
    if model is None:
        write_atomic(failed, lambda tmp: tmp.write_text("\n".join(notes)))
        return None
    import onnx

    write_atomic(target, lambda tmp: onnx.save(model, str(tmp)))
    log.info("optimised ONNX graph %s: %s", target, "; ".join(notes))
    return target


def optimized_model(entry: Path, kind: str, fp32: Path) -> tuple[Any | None, list[str]]:
    """The fused (and, for a classifier, first-token) graph, or None with the reasons when no step held."""
    import onnx
    from onnxruntime.transformers.optimizer import optimize_model

    meta = json.loads((entry / "meta.json").read_text())
    config = meta["config"]
    sample = _sample_feed(entry, meta)
    plain = onnx.load(str(fp32))
    expected = _run(plain, sample)
    fused = optimize_model(
        str(fp32),
        model_type="bert",
        num_heads=int(config.get("num_attention_heads") or 0),
        hidden_size=int(config.get("hidden_size") or 0),
        opt_level=0,  # the session applies ORT's own graph optimisations when it loads the file
    ).model
    if not any(opset.domain == "com.microsoft" for opset in fused.opset_import):  # the fused kernels' domain
        fused.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    stats = sum(1 for node in fused.graph.node if node.op_type == "Attention")
    if stats == 0 or not _same(_run(fused, sample), expected):
        return None, [f"fusion gave {stats} attention kernels or other outputs; not used"]
    notes = [f"{stats} fused attention layers"]
    if kind == "sequence-classification":
        pruned = first_token_last_layer(fused)
        if pruned is not None and _same(_run(pruned, sample), expected):
            return pruned, [*notes, "last layer computed for the first token only"]
        notes.append("first-token last layer changed the outputs; not used")
    return fused, notes


def first_token_last_layer(model: Any) -> Any | None:
    """A copy of `model` where everything after the last Attention kernel sees sequence position 0 only.

    The last attention's input (the residual stream, read again by the residual add) and its output are both
    sliced to position 0 for every node but that attention itself.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    attentions = [node for node in graph.node if node.op_type == "Attention"]
    if not attentions:
        return None
    last = attentions[-1]
    stream, context = last.input[0], last.output[0]
    constants = {"crawlrag_first_starts": [0], "crawlrag_first_ends": [1], "crawlrag_first_axes": [1]}
    graph.initializer.extend(
        numpy_helper.from_array(np.array(value, dtype=np.int64), name) for name, value in constants.items()
    )
    nodes = []
    for node in graph.node:
        if node is not last:
            for i, name in enumerate(node.input):
                if name in (stream, context):
                    node.input[i] = f"{name}_first"
        nodes.append(node)
        if node is last:  # the stream is produced before the attention, so both slices can follow it
            nodes += [
                helper.make_node("Slice", [name, *constants], [f"{name}_first"], name=f"{name}_first_slice")
                for name in (stream, context)
            ]
    if any(output.name in (stream, context) for output in graph.output):
        return None  # a graph output would change shape
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def _sample_feed(entry: Path, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    from crawlrag.onnx_export import feed, open_tokenizer

    tokenizer = open_tokenizer(entry, meta, 128)
    if meta["kind"] == "sequence-classification":
        encodings = tokenizer.encode_batch(list(_SAMPLE))
    else:
        encodings = tokenizer.encode_batch([passage for _, passage in _SAMPLE])
    return feed(encodings, meta["inputs"])


def _run(model: Any, sample: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, sample)[0], dtype=np.float64)


def _same(actual: np.ndarray, expected: np.ndarray) -> bool:
    if actual.shape != expected.shape:
        return False
    scale = max(float(np.max(np.abs(expected))), 1.0)
    return float(np.max(np.abs(actual - expected))) <= TOLERANCE * scale
