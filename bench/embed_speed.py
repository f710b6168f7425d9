"""Embedder speed and agreement: chunks/s of each backend and precision on real doc chunks, cosine vs torch fp32.

    python bench/embed_speed.py                      # ~1000 chunks of the Python 3.11 docs, all configurations
    python bench/embed_speed.py --chunks 300 --configs "torch float32,onnx int8"

Chunks come from every 7th page of /usr/share/doc/python3.11/html/library, cut by crawlrag's chunker (1,000
characters). The first configuration is the reference every cosine compares with (torch float32 by default).
Prints the matmul ceiling and each configuration's share of it at the chunks' mean token count.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bert_gflop, ceiling_line, ceiling_share, matmul_gflops
from rerank import page_markdown

from crawlrag.chunking import chunk_markdown
from crawlrag.embeddings.base import Embedder
from crawlrag.embeddings.local import LocalEmbedder, resolve_model_path
from crawlrag.embeddings.onnx import OnnxEmbedder

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DOCS = Path("/usr/share/doc/python3.11/html/library")
CONFIGS = "torch float32,torch bfloat16,onnx float32,onnx int8,onnx int8-full"


def chunks(limit: int) -> list[str]:
    texts: list[str] = []
    for page in sorted(DOCS.glob("*.html"))[::7]:
        title, markdown = page_markdown(page)
        texts += [c.content for c in chunk_markdown(markdown, url=page.name, title=title, chunk_size=1000)]
        if len(texts) >= limit:
            break
    return texts[:limit]


def build(config: str, cache: Path) -> Embedder:
    backend, precision = config.split()
    if backend == "torch":
        return LocalEmbedder(MODEL, precision=precision)
    return OnnxEmbedder(MODEL, Path(resolve_model_path(MODEL)), cache, precision=precision)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--configs", default=CONFIGS, help="comma-separated 'backend precision' pairs")
    args = parser.parse_args()
    texts = chunks(args.chunks)
    gflops = matmul_gflops()
    reference: np.ndarray | None = None
    with tempfile.TemporaryDirectory() as cache:
        first = build(args.configs.split(",")[0], Path(cache))
        first.load()
        counts = first.token_counter().counts(texts)
        window = first.max_input_tokens or 512
        tokens = float(np.mean([min(n + 2, window) for n in counts]))
        print(f"{len(texts)} chunks, mean {tokens:.0f} tokens (window {window}); {ceiling_line(gflops)}")
        print(f"{'config':<16}{'chunks/s':>9}{'per CPU-s':>10}{'ceil %':>7}{'cos mean':>9}{'cos min':>9}{'cos p1':>8}")
        for config in args.configs.split(","):
            embedder = first if reference is None else build(config, Path(cache))
            embedder.load()
            embedder.embed_documents(texts[:16])  # warm-up
            wall, cpu = time.perf_counter(), time.process_time()
            vectors = embedder.embed_documents(texts)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            reference = vectors if reference is None else reference
            cosines = np.sum(reference * vectors, axis=1)
            rate = len(texts) / wall
            share = ceiling_share(rate, bert_gflop(tokens), gflops, config.split()[1])
            print(
                f"{config:<16}{rate:9.1f}{len(texts) / cpu:10.1f}{100 * share:6.0f}%{cosines.mean():9.5f}"
                f"{cosines.min():9.5f}{np.percentile(cosines, 1):8.5f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
