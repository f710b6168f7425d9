"""Embedding documents in worker processes, each with its own copy of the model on its share of the cores.

On CPU a MiniLM-sized encoder keeps two cores busier as two single-threaded processes, each embedding half of
a batch, than as one process with two intra-op threads: its matrices are small, so every operator of the
forward pass ends in a thread barrier, and the crawler's Python work (parsing, converting, chunking) holds the
GIL the forward pass needs between operators. On the Python docs (2 cores) indexing took 240 s this way (median
of four runs, 203-242 s) against 252-253 s in-process. torch's thread count is process-wide state, which is why
the split is by process, not thread.

The processes start on the first call large enough to split (a query never starts them) and load the model
while the caller keeps embedding in-process; calls go to them once every one has loaded. A worker that fails to
start or dies is logged and the embedder goes on in-process: the pool is an optimisation, never a failure.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Below this many texts per process a call stays in-process: the transfer and a half-empty batch cost more
# than the second core gives.
MIN_TEXTS_PER_WORKER = 8
# A batch of 64 chunks takes about a second; a worker silent this long is stuck.
_ANSWER_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker process loads: the parent's model, already at its chosen precision."""

    model_path: str
    precision: str
    batch_size: int
    threads: int


def serve(spec: WorkerSpec, conn: Connection) -> None:
    """A worker process's main: load the model, then answer lists of texts with vectors until told to stop."""
    import torch

    torch.set_num_threads(spec.threads)
    from crawlrag.embeddings.local import LocalEmbedder

    try:
        embedder = LocalEmbedder(spec.model_path, precision=spec.precision, batch_size=spec.batch_size, workers=0)
        embedder.load()
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            texts = conn.recv()
        except (EOFError, OSError):
            return  # the parent has gone
        if texts is None:
            return
        try:
            conn.send(("ok", embedder.embed_documents(texts)))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class WorkerPoolError(RuntimeError):
    """The pool cannot embed (a worker failed to start, failed or died); the caller embeds in-process."""


class EmbeddingWorkers:
    """`count` worker processes of `spec`; `embed` splits a call between them. One call at a time."""

    def __init__(self, spec: WorkerSpec, count: int) -> None:
        self._spec = spec
        self._count = count
        self._lock = threading.Lock()
        self._workers: list[tuple[Any, Connection]] = []
        self._loaded: set[int] = set()  # workers that said they are ready
        self._closed = False
        self.error: str | None = None
        self.texts_embedded = 0

    @property
    def count(self) -> int:
        return self._count

    def ready(self) -> bool:
        """Start the processes if not yet started; True once every one has loaded the model (never blocks)."""
        with self._lock:
            if self.error is not None or self._closed:
                return False
            if not self._workers:
                self._start()
            for index, (_, conn) in enumerate(self._workers):
                if self.error is None and index not in self._loaded and self._poll_ready(conn):
                    self._loaded.add(index)
            return self._all_loaded()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of `texts`, the i-th process embedding texts i, i+count, ... (similar lengths when sorted)."""
        with self._lock:
            if not self._all_loaded():
                raise WorkerPoolError("the embedding workers are not ready")
            shares = [list(texts[i :: self._count]) for i in range(self._count)]
            try:
                for (_, conn), share in zip(self._workers, shares, strict=True):
                    conn.send(share)
                parts = [self._answer(conn) for _, conn in self._workers]
            except (EOFError, OSError, WorkerPoolError) as exc:
                self._fail(f"an embedding worker failed: {exc}")
                raise WorkerPoolError(self.error or str(exc)) from exc
            self.texts_embedded += len(texts)
        out = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
        for i, part in enumerate(parts):
            out[i :: self._count] = part
        return out

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._stop()

    def _all_loaded(self) -> bool:
        return self.error is None and len(self._loaded) == self._count

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")  # fork would copy the parent's threads and torch state
        try:
            for _ in range(self._count):
                parent, child = context.Pipe()
                process = context.Process(target=serve, args=(self._spec, child), daemon=True)
                process.start()
                child.close()
                self._workers.append((process, parent))
        except Exception as exc:
            self._fail(f"could not start the embedding workers: {exc}")

    def _poll_ready(self, conn: Connection) -> bool:
        try:
            if not conn.poll():
                return False
            kind, detail = conn.recv()
        except (EOFError, OSError) as exc:
            self._fail(f"an embedding worker exited while loading the model: {exc}")
            return False
        if kind != "ready":
            self._fail(f"an embedding worker could not load the model: {detail}")
            return False
        return True

    @staticmethod
    def _answer(conn: Connection) -> np.ndarray:
        if not conn.poll(_ANSWER_TIMEOUT_S):
            raise WorkerPoolError(f"no answer in {_ANSWER_TIMEOUT_S:.0f} s")
        kind, payload = conn.recv()
        if kind != "ok":
            raise WorkerPoolError(str(payload))
        return np.asarray(payload, dtype=np.float32)

    def _fail(self, message: str) -> None:
        self.error = message
        log.warning("%s; embedding in-process from now on", message)
        self._stop()

    def _stop(self) -> None:
        for process, conn in self._workers:
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
            conn.close()
        self._workers = []
        self._loaded.clear()
