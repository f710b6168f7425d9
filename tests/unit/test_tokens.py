from pathlib import Path

from crawlrag.embeddings.local import resolve_model_path
from crawlrag.tokens import EstimatedTokenCounter, TokenizerCounter, counter_for_model_dir

SAMPLES = [
    "class csv.DictWriter(f, fieldnames, restval='', extrasaction='raise', dialect='excel', *args, **kwds)",
    "object.__init__(self[, ...]) is called after the instance has been created by __new__().",
    "Read rows as dictionaries with a header; the keys are given by the optional fieldnames parameter.",
    "",
]


def test_the_default_model_counts_with_its_own_tokenizer() -> None:
    counter = counter_for_model_dir(resolve_model_path("sentence-transformers/all-MiniLM-L6-v2"))
    assert isinstance(counter, TokenizerCounter) and counter.exact
    counts = counter.counts(SAMPLES)
    assert counts[-1] == 0 and all(count > 10 for count in counts[:-1])
    assert counter.count(SAMPLES[0]) == counts[0]


def test_the_estimate_never_undercounts_the_real_tokenizer() -> None:
    real = counter_for_model_dir(resolve_model_path("sentence-transformers/all-MiniLM-L6-v2"))
    estimate = EstimatedTokenCounter()
    assert not estimate.exact
    for text, exact in zip(SAMPLES, real.counts(SAMPLES), strict=True):
        assert estimate.count(text) >= exact


def test_a_folder_without_a_tokenizer_gets_the_estimate(tmp_path: Path) -> None:
    assert isinstance(counter_for_model_dir(tmp_path), EstimatedTokenCounter)
    (tmp_path / "tokenizer.json").write_text("not json")
    assert isinstance(counter_for_model_dir(tmp_path), EstimatedTokenCounter)
    assert isinstance(counter_for_model_dir(None), EstimatedTokenCounter)
