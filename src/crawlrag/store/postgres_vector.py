"""psycopg adapters between numpy float32 arrays and pgvector's `vector` type (no `pgvector` package needed).

The binary forms are used for COPY and for fetching embeddings: they skip formatting and parsing 384 decimal
numbers per row. pgvector's binary layout is: uint16 dimensions, uint16 unused (0), then big-endian float32s.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
from psycopg import Connection
from psycopg.abc import Buffer
from psycopg.adapt import Dumper, Loader
from psycopg.pq import Format

_HEADER = struct.Struct(">HH")
MAX_DIMENSIONS = 16_000  # pgvector's limit for the vector type


def _as_vector(obj: Any) -> np.ndarray:
    array = np.asarray(obj, dtype=np.float32)
    if array.ndim != 1 or not 0 < len(array) <= MAX_DIMENSIONS:
        raise ValueError(f"a vector must be one-dimensional with 1 to {MAX_DIMENSIONS} values, got shape {array.shape}")
    return array


class _VectorBinaryDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        array = _as_vector(obj)
        return _HEADER.pack(len(array), 0) + array.astype(">f4").tobytes()


class _VectorTextDumper(Dumper):
    def dump(self, obj: Any) -> Buffer:
        array = _as_vector(obj)
        return ("[" + ",".join(repr(float(value)) for value in array) + "]").encode()


class _VectorBinaryLoader(Loader):
    format = Format.BINARY

    def load(self, data: Buffer) -> np.ndarray:
        return np.frombuffer(bytes(data), dtype=">f4", offset=_HEADER.size).astype(np.float32)


class _VectorTextLoader(Loader):
    def load(self, data: Buffer) -> np.ndarray:
        return np.array(bytes(data).decode()[1:-1].split(","), dtype=np.float32)


def register_vector(conn: Connection[Any], oid: int) -> None:
    """Dump numpy arrays as `vector` (binary where psycopg may choose) and load `vector` columns as arrays.

    The type's oid differs between databases, so the dumpers are specialised per oid here rather than declared
    once at import time.
    """
    text_dumper = type("VectorTextDumper", (_VectorTextDumper,), {"oid": oid})
    binary_dumper = type("VectorBinaryDumper", (_VectorBinaryDumper,), {"oid": oid})
    # The dumper registered last is the one `%s` placeholders use: binary, which is smaller and exact.
    conn.adapters.register_dumper(np.ndarray, text_dumper)
    conn.adapters.register_dumper(np.ndarray, binary_dumper)
    conn.adapters.register_loader(oid, _VectorTextLoader)
    conn.adapters.register_loader(oid, _VectorBinaryLoader)
