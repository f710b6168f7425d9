"""The ONNX embedder on a tiny random sentence-transformers model: same vectors as torch, auto choice, tokens."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from crawlrag.config import Settings
from crawlrag.embeddings import EmbeddingError, LocalEmbedder
from crawlrag.embeddings.choice import AutoEmbedder, EmbedTrial, choose_embedder
from crawlrag.embeddings.factory import build_embedder
from crawlrag.embeddings.instrumented import InstrumentedEmbedder
from crawlrag.embeddings.onnx import OnnxEmbedder, pool, read_pooling
from crawlrag.embeddings.openai import OpenAICompatibleEmbedder
from crawlrag.onnx_export import MODEL_FILES, cache_entry, sensitive_nodes

WORDS = (
    "the a of to and in is for read write file csv json python list dict loop task thread async await "
    "error value return function class import module data string number path open close line text time date"
).split()
TEXTS = [
    "read a csv file in python",
    "json data to a dict",
    "the async loop runs each task in one thread " * 6,
    "open the file, write a line of text, close it",
    "time and date values",
    "",
]


@pytest.fixture(scope="module")
def tiny_st_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT saved as a sentence-transformers model (Transformer + mean Pooling + Normalize)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny-st")
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS)), *chars, *".,?!:;'\"()-",
              *(f"##{c}" for c in chars)]  # fmt: skip
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(tokens)})
    config = BertConfig(
        vocab_size=len(tokens), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=512, initializer_range=0.2,
    )  # fmt: skip
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    (directory / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
            ]
        )
    )
    (directory / "1_Pooling").mkdir()
    (directory / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False})
    )
    (directory / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64, "do_lower_case": False}))
    return directory


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export cache for the module: each test would otherwise export the model again."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def torch_vectors(tiny_st_dir: Path) -> np.ndarray:
    return LocalEmbedder(str(tiny_st_dir), precision="float32").embed_documents(TEXTS)


def test_onnx_fp32_equals_torch_and_int8_agrees(tiny_st_dir: Path, torch_vectors: np.ndarray, onnx_cache: Path) -> None:
    fp32 = OnnxEmbedder("tiny", tiny_st_dir, onnx_cache, precision="float32", batch_size=2, batch_tokens=64)
    vectors = fp32.embed_documents(TEXTS)
    assert vectors.shape == torch_vectors.shape and vectors.dtype == np.float32
    assert np.max(np.abs(vectors - torch_vectors)) < 1e-4
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert fp32.embed_documents([]).shape == (0, 32)
    assert np.allclose(fp32.embed_query(TEXTS[0]), vectors[0], atol=1e-6)
    assert fp32.dimension == 32 and fp32.max_input_tokens == 64
    for precision in ("int8", "int8-full"):
        quantized = OnnxEmbedder("tiny", tiny_st_dir, onnx_cache, precision=precision)  # type: ignore[arg-type]
        cosines = np.sum(quantized.embed_documents(TEXTS) * torch_vectors, axis=1)
        assert cosines.min() > 0.95, precision
    entry = cache_entry(tiny_st_dir, onnx_cache, "feature-extraction")
    assert {MODEL_FILES[p] for p in MODEL_FILES} <= {f.name for f in entry.iterdir()}
    status = fp32.status()
    assert status["backend"] == "onnx" and status["loaded"] and status["precision"] == "float32"


def test_int8_keeps_ffn_down_projections_in_fp32(tiny_st_dir: Path, onnx_cache: Path) -> None:
    import onnx

    OnnxEmbedder("tiny", tiny_st_dir, onnx_cache, precision="int8").load()
    entry = cache_entry(tiny_st_dir, onnx_cache, "feature-extraction")
    kept = sensitive_nodes(onnx.load(str(entry / MODEL_FILES["float32"])))
    assert len(kept) == 2 and all("output/dense" in name for name in kept)  # one per layer
    quantized = onnx.load(str(entry / MODEL_FILES["int8"]))
    names = {node.name for node in quantized.graph.node if node.op_type == "MatMul"}
    assert set(kept) <= names  # still a float MatMul


def test_token_limit_and_counter(tiny_st_dir: Path, onnx_cache: Path) -> None:
    onnx_embedder = OnnxEmbedder("tiny", tiny_st_dir, onnx_cache, precision="float32")
    counter = onnx_embedder.token_counter()
    assert counter.exact and counter.count("read a csv file") == 4
    torch_embedder = LocalEmbedder(str(tiny_st_dir), precision="float32")
    assert torch_embedder.max_input_tokens == 64 and torch_embedder.token_counter().exact
    remote = OpenAICompatibleEmbedder("m", "http://127.0.0.1:9/v1")
    assert remote.max_input_tokens is None and not remote.token_counter().exact
    from prometheus_client import CollectorRegistry

    wrapped = InstrumentedEmbedder(onnx_embedder, CollectorRegistry())
    assert wrapped.max_input_tokens == 64 and wrapped.token_counter().exact


def test_long_texts_are_truncated_to_the_window(tiny_st_dir: Path, onnx_cache: Path) -> None:
    embedder = OnnxEmbedder("tiny", tiny_st_dir, onnx_cache, precision="float32")
    long = "read a csv file " * 100
    assert np.allclose(embedder.embed_query(long), embedder.embed_query(long + " json data"), atol=1e-6)


def test_unsupported_models_are_refused(tiny_st_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(EmbeddingError, match=r"no modules\.json"):
        read_pooling(tmp_path)
    (tmp_path / "modules.json").write_text(json.dumps([{"type": "sentence_transformers.models.Dense"}]))
    with pytest.raises(EmbeddingError, match="EMBEDDING_BACKEND=torch"):
        read_pooling(tmp_path)
    embedder = OnnxEmbedder("bad", tmp_path, tmp_path / "cache")
    with pytest.raises(EmbeddingError, match="with onnx"):
        embedder.load()
    assert embedder.status()["error"]
    assert read_pooling(tiny_st_dir) == ("mean_tokens", True, 64)


def test_pooling_modes() -> None:
    hidden = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    mask = np.array([[1, 1, 0]])
    assert pool(hidden, mask, "mean_tokens")[0].tolist() == [2.0, 3.0, 4.0, 5.0]
    assert pool(hidden, mask, "cls_token")[0].tolist() == [0.0, 1.0, 2.0, 3.0]


class Fixed:
    """An embedder returning given vectors, for the choice logic."""

    def __init__(self, vectors: np.ndarray, label: str) -> None:
        self.vectors, self.label, self.loaded, self.closed = vectors, label, 0, False
        self.model_name, self.dimension, self.max_input_tokens = "m", vectors.shape[1], 16

    def token_counter(self) -> object:
        return None

    def load(self) -> None:
        self.loaded += 1

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self.vectors[: len(texts)]

    def embed_query(self, text: str) -> np.ndarray:
        return self.vectors[0]

    def status(self) -> dict[str, object]:
        return {"backend": self.label}

    def close(self) -> None:
        self.closed = True


def test_choose_embedder_by_speed_and_agreement() -> None:
    trials = [
        EmbedTrial("onnx int8-full", 90.0, 0.994, 0.988),  # fast, but one vector drifts too far
        EmbedTrial("onnx int8", 70.0, 0.997, 0.993),
        EmbedTrial("torch", 40.0, 0.9999, 0.9999),
        EmbedTrial("broken", 500.0, 1.0, 1.0, "failed: x"),
    ]
    assert choose_embedder(trials).label == "onnx int8"  # type: ignore[union-attr]
    assert choose_embedder(trials[:1]) is None


def test_auto_embedder_measures_once_and_delegates(tmp_path: Path, tiny_st_dir: Path) -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(30, 8)).astype(np.float32)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    noisy = reference + rng.normal(scale=0.5, size=reference.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    built: list[str] = []
    instances: list[Fixed] = []

    def make(vectors: np.ndarray, label: str) -> object:
        def build() -> Fixed:
            built.append(label)
            instances.append(Fixed(vectors, label))
            return instances[-1]

        return build

    def auto() -> AutoEmbedder:
        return AutoEmbedder(
            "m",
            [("torch", make(reference, "torch")), ("onnx int8", make(noisy, "onnx int8"))],  # type: ignore[list-item]
            make(reference, "reference"),  # type: ignore[arg-type]
            fallback="torch",
            model_dir=tiny_st_dir,
            cache_dir=tmp_path,
        )

    first = auto()
    assert first.status()["loaded"] is False
    first.load()
    assert first.status()["backend"] == "torch" and "auto chose torch" in first.status()["backend_reason"]
    assert {t.label for t in first.trials} == {"torch", "onnx int8"}
    assert first.dimension == 8 and first.max_input_tokens == 16
    assert first.embed_query("x").shape == (8,)
    measured = [e for e in instances if e.label != "reference"][:2]
    assert [e.closed for e in measured] == [True, True]  # measured in-process, then dropped
    built.clear()
    instances.clear()
    second = auto()
    second.close()
    assert built == []  # closing an embedder that never chose does not make it choose
    wrapped = InstrumentedEmbedder(second, CollectorRegistry())
    wrapped.load()
    assert built == ["torch"]  # the stored decision: nothing measured again
    assert not instances[0].closed
    wrapped.close()  # as AppContext.close does: through the metrics wrapper to the chosen backend
    assert instances[0].closed


def test_factory_choices(make_settings: object, tiny_st_dir: Path, onnx_cache: Path) -> None:
    def settings(**values: object) -> Settings:
        values.setdefault("embedding_model", str(tiny_st_dir))
        return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]

    assert isinstance(build_embedder(settings(embedding_backend="torch"), onnx_cache), LocalEmbedder)
    onnx_embedder = build_embedder(settings(embedding_backend="onnx"), onnx_cache)
    assert isinstance(onnx_embedder, OnnxEmbedder) and onnx_embedder.precision == "int8"
    fp32 = build_embedder(settings(embedding_backend="onnx", embedding_precision="float32"), onnx_cache)
    assert isinstance(fp32, OnnxEmbedder) and fp32.precision == "float32"
    assert isinstance(build_embedder(settings(embedding_precision="int8"), onnx_cache), OnnxEmbedder)
    assert isinstance(build_embedder(settings(embedding_precision="bfloat16"), onnx_cache), LocalEmbedder)
    assert isinstance(build_embedder(settings(), onnx_cache), LocalEmbedder)  # the default backend is torch
    assert isinstance(build_embedder(settings(embedding_backend="auto"), onnx_cache), AutoEmbedder)
    gpu = build_embedder(settings(embedding_device="cuda"), onnx_cache)  # onnx runs on CPU only
    assert isinstance(gpu, LocalEmbedder)
    assert isinstance(build_embedder(settings(embedding_model="org/not-local"), onnx_cache), LocalEmbedder)


def test_auto_on_tiny_model_picks_an_agreeing_backend(tiny_st_dir: Path, onnx_cache: Path) -> None:
    settings = Settings(_env_file=None, embedding_model=str(tiny_st_dir), embedding_backend="auto")  # type: ignore[call-arg]
    embedder = build_embedder(settings, onnx_cache)
    assert isinstance(embedder, AutoEmbedder)
    embedder.load()
    best = choose_embedder(embedder.trials)
    assert best is not None and embedder.status()["loaded"]
    assert embedder.embed_documents(TEXTS).shape == (len(TEXTS), 32)
