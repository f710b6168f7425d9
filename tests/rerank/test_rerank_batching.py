"""Token-budget batching: length-bucketed batches, in the planner and in the worker."""

from __future__ import annotations

from collections.abc import Callable

from rerank_fakes import FakeBackend, FakeLoader, FakeRuntime

from crawlrag.batching import padded_tokens, plan_batches
from crawlrag.rerank import LocalReranker
from crawlrag.rerank.batching import CPU_BATCH_TOKENS, GPU_BATCH_TOKENS, default_batch_tokens


def test_batches_are_longest_first_and_within_the_budget() -> None:
    lengths = [10, 500, 30, 480, 20, 40, 25, 35]
    batches = plan_batches(lengths, max_pairs=32, max_tokens=900)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert batches[:2] == [[1], [3]]  # 2 × 500 or 2 × 480 would pass 900 padded tokens
    assert batches[2] == [5, 7, 2, 6, 4, 0]  # the short pairs share one batch
    assert all(len(batch) * max(lengths[i] for i in batch) <= 900 for batch in batches)
    widths = [max(lengths[i] for i in batch) for batch in batches]
    assert widths == sorted(widths, reverse=True)


def test_pair_cap_and_oversized_pairs() -> None:
    assert plan_batches([5] * 10, max_pairs=4, max_tokens=10**6) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert plan_batches([2000, 10], max_pairs=8, max_tokens=512) == [[0], [1]]  # too long for any budget: alone
    assert plan_batches([], max_pairs=8, max_tokens=512) == []


def test_budget_pads_less_than_fixed_batches() -> None:
    # Documentation-like lengths: mostly ~230 tokens, a few long code chunks at the 512 limit.
    lengths = [230 + (i * 37) % 60 for i in range(45)] + [512] * 5
    fixed = plan_batches(lengths, max_pairs=32, max_tokens=10**9)
    budget = plan_batches(lengths, max_pairs=32, max_tokens=CPU_BATCH_TOKENS)
    assert padded_tokens(lengths, budget) < 0.8 * padded_tokens(lengths, fixed)
    assert padded_tokens(lengths, budget) < 1.1 * sum(lengths)


def test_default_budget_by_device() -> None:
    assert default_batch_tokens("cpu") == CPU_BATCH_TOKENS
    assert default_batch_tokens("cuda") == default_batch_tokens("mps") == GPU_BATCH_TOKENS > CPU_BATCH_TOKENS


async def test_worker_honours_the_token_budget(make_reranker: Callable[..., LocalReranker]) -> None:
    backend = FakeBackend()  # one "token" per character
    reranker = make_reranker(
        FakeLoader({"primary": [backend]}),
        reranking_health_check_enabled=False,
        reranking_warmup_samples=0,
        reranking_batch_size=32,
        reranking_batch_tokens=100,
    )
    assert await reranker.wait_ready(5)
    passages = ["x" * 40, "y" * 5, "z" * 6, "w" * 7, "v" * 45]
    scores = await reranker.rerank("q", passages)
    assert scores == [float(len(p)) for p in passages]
    assert [[len(p) for _, p in batch] for batch in backend.calls] == [[45, 40], [7, 6, 5]]
    assert reranker.status()["batch_tokens"] == 100


async def test_worker_budget_defaults_by_device(make_reranker: Callable[..., LocalReranker]) -> None:
    gpu = make_reranker(
        FakeLoader({"primary": [FakeBackend()]}),
        runtime=FakeRuntime(cuda=1),
        gpu_preference="cuda",
        reranking_health_check_enabled=False,
        reranking_warmup_samples=0,
    )
    assert await gpu.wait_ready(5)
    assert gpu.status()["device"] == "cuda:0" and gpu.status()["batch_tokens"] == GPU_BATCH_TOKENS


async def test_token_counting_failure_falls_back_to_characters(make_reranker: Callable[..., LocalReranker]) -> None:
    class NoCounter(FakeBackend):
        def token_lengths(self, pairs: object) -> list[int]:
            raise RuntimeError("tokenizer gone")

    backend = NoCounter()
    reranker = make_reranker(
        FakeLoader({"primary": [backend]}), reranking_health_check_enabled=False, reranking_warmup_samples=0
    )
    assert await reranker.wait_ready(5)
    assert await reranker.rerank("q", ["aaaa", "b"]) == [4.0, 1.0]
