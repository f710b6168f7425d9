"""Fixtures for the reranker: a tiny real cross-encoder on disk, and fakes for backends, loaders and devices."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rerank_fakes import FakeRuntime, OnlineHub

from crawlrag.config import Settings
from crawlrag.rerank import LocalReranker
from crawlrag.rerank.hub import HubProbe

WORDS = (
    "the a an of to and in is for on with by as at from it this that be are was were how many people live "
    "berlin population city museum cell energy organelle python file read write list tuple dict set class "
    "function return value error async await event loop task thread process module import package data "
    "string number integer float json csv path open close line lines text bytes encode decode time date"
).split()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer BERT cross-encoder (1 label) saved like a hub model, so CrossEncoder(path) loads it."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny-cross-encoder")
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    tokens = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *sorted(set(WORDS)),
        *chars,
        *list(".,?!:;'\"()-"),
        *(f"##{c}" for c in chars),
    ]
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(tokens)})
    config = BertConfig(
        vocab_size=len(tokens),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=1,
        # Wider than BERT's 0.02: with tiny weights attention is uniform and every passage scores the same.
        initializer_range=0.2,
    )
    model = BertForSequenceClassification(config)
    with torch.no_grad():  # logits with a standard deviation near 1 across passages
        model.classifier.weight.mul_(5.0)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def rerank_settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "use_reranking": True,
            "reranking_model_name": "primary",
            "reranking_backend": "torch",
            "gpu_preference": "cpu",
            "reranking_warmup_samples": 2,
            "reranking_batch_size": 8,
            "reranking_load_retries": 2,
        }
        values.update(overrides)
        return make_settings(**values)

    return build


@pytest.fixture
def make_reranker(rerank_settings: Callable[..., Settings]) -> Iterator[Callable[..., LocalReranker]]:
    built: list[LocalReranker] = []

    def build(loader: Any, *, runtime: Any = None, hub: HubProbe | None = None, **overrides: Any) -> LocalReranker:
        reranker = LocalReranker(
            rerank_settings(**overrides),
            device_runtime=runtime or FakeRuntime(),
            backend_loader=loader,
            hub_probe=hub or OnlineHub(),
            load_backoff_seconds=0.0,
        )
        built.append(reranker)
        return reranker

    yield build
    for reranker in built:
        reranker.close()
