"""Length-bucketed batches under a token budget, so a batch pays for little padding.

A batch is padded to its longest sequence, and attention grows with the square of that length: a fixed number
of sequences per batch makes every short one pay for the longest beside it. Sorting by token count and closing
a batch when its padded size (sequences × longest) would pass the budget keeps neighbours of similar length and
lets short sequences go in larger batches than long ones. Used by the reranker's worker and the ONNX embedder.
"""

from __future__ import annotations

from collections.abc import Sequence


def plan_batches(lengths: Sequence[int], *, max_pairs: int, max_tokens: int) -> list[list[int]]:
    """Indices of `lengths` in batches, longest first, each within `max_pairs` items and `max_tokens` padded tokens.

    An item longer than the whole budget still gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        # Longest first: the batch's first item is the width every item in it is padded to.
        if current and (len(current) >= max_pairs or (len(current) + 1) * lengths[current[0]] > max_tokens):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def padded_tokens(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> int:
    """Tokens the model computes for `batches`, padding included."""
    return sum(len(batch) * max(lengths[i] for i in batch) for batch in batches if batch)
