"""Parquet manifests: schemas, and streaming atomic writes (flat memory, never a partial file for readers)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from synthaug.core.atomic import atomic_output


def write_manifest(path: Path, schema: pa.Schema, row_chunks: Iterable[list[dict] | pa.Table]) -> int:
    """Write chunks (lists of row dicts, or tables) to a Parquet file atomically, one row group per chunk;
    return the row count."""
    rows = 0
    with atomic_output(path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for chunk in row_chunks:
            if len(chunk):
                table = chunk if isinstance(chunk, pa.Table) else pa.Table.from_pylist(chunk, schema=schema)
                writer.write_table(table)
                rows += len(chunk)
        if rows == 0:
            writer.write_table(schema.empty_table())
    return rows


def read_manifest(path: Path, columns: list[str] | None = None) -> pa.Table:
    """Read a manifest written by `write_manifest`."""
    return pq.read_table(path, columns=columns)
