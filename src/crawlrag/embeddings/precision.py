"""Choosing the embedder's precision: bf16 where the CPU computes it natively, fp16 on GPUs, else fp32.

`auto` only keeps a lower precision if its vectors stay within cosine 0.999 of fp32 on a calibration sample, so
search quality is unchanged while indexing runs up to ~1.7x faster.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

MIN_COSINE = 0.999

CALIBRATION_TEXTS = [
    "csv.DictReader(f) creates an object that operates like a regular reader but maps the information in each "
    "row to a dict whose keys are given by the optional fieldnames parameter.",
    "Return an iterator of os.DirEntry objects corresponding to the entries in the directory given by path.",
    "# Installation\n\nInstall the package with pip, then import it. Python 3.11 or newer is required.",
    "```python\nimport asyncio\n\nasync def main():\n    await asyncio.sleep(1)\n\nasyncio.run(main())\n```",
    "The garbage collector can be disabled with gc.disable(); objects in reference cycles are then never freed.",
    "Timeouts: every request accepts a timeout argument in seconds. A value of None waits forever, which is "
    "rarely what you want in production code that talks to the network. " * 3,
    "PYTHONDONTWRITEBYTECODE: if set to a non-empty string, Python won't try to write .pyc files.",
    "Configuration is read from environment variables and an optional .env file; unknown keys are ignored.",
]


@dataclass(frozen=True, slots=True)
class PrecisionChoice:
    precision: str
    reason: str
    min_cosine: float | None = None


def agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """The smallest cosine similarity between matching rows (vectors are L2-normalised)."""
    return float(np.min(np.sum(reference * candidate, axis=1)))


def choose_precision(
    requested: str,
    device: str,
    lower_supported: bool,
    embed_fp32: Callable[[list[str]], np.ndarray],
    embed_lower: Callable[[str, list[str]], np.ndarray],
) -> PrecisionChoice:
    """Decide the precision; `embed_lower(precision, texts)` casts the model when it is called."""
    if requested == "float16" and device == "cpu":
        # CPUs have no fast float16 matmul; emulated fp16 is both slower and less accurate than fp32.
        return PrecisionChoice("float32", "float16 is not used on CPU")
    if requested != "auto":
        return PrecisionChoice(requested, "set by EMBEDDING_PRECISION")
    lower = "bfloat16" if device == "cpu" else "float16"
    if not lower_supported:
        return PrecisionChoice("float32", f"{lower} is not computed natively on {device}")
    reference = embed_fp32(CALIBRATION_TEXTS)
    try:
        candidate = embed_lower(lower, CALIBRATION_TEXTS)
    except Exception as exc:  # an unsupported kernel must leave the embedder usable in fp32
        log.warning("%s embedding failed, staying in float32: %s", lower, exc)
        return PrecisionChoice("float32", f"{lower} failed: {exc}")
    cosine = agreement(reference, candidate)
    if cosine >= MIN_COSINE:
        return PrecisionChoice(lower, f"{lower} agrees with float32 (min cosine {cosine:.5f})", cosine)
    return PrecisionChoice("float32", f"{lower} disagrees with float32 (min cosine {cosine:.5f})", cosine)
