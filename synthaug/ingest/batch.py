"""Ingest one landed batch: decode every file fully, keep an immutable copy of each good one in a
content-addressed pack, and write a manifest with one row per file (bad files included, with the reason).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synthaug.core.layout import DataLayout
from synthaug.core.manifest import write_manifest
from synthaug.core.packs import PackWriter, remove_stale_packs
from synthaug.core.progress import Progress, ProgressFn
from synthaug.core.supervised_pool import PoolLimits, PoolStats, SupervisedPool
from synthaug.ingest.file_check import (
    DEFAULT_DECODER,
    RAW_FIELDS,
    DecodeSettings,
    IngestContext,
    apply_outcome,
    read_file,
)
from synthaug.ingest.imageio import DEFAULT_MAX_PIXELS
from synthaug.ingest.landing import LandedFile, count_batch_files, iter_batch_files

DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024
_RAW_TYPES = {
    "width": pa.int32(),
    "height": pa.int32(),
    "channels": pa.int8(),
    "file_size": pa.int64(),
    "stored_offset": pa.int64(),
}
RAW_MANIFEST_SCHEMA = pa.schema([(name, _RAW_TYPES.get(name, pa.string())) for name in RAW_FIELDS])
CHUNK_ROWS = 2048
PARALLEL_MIN_FILES = 512
WORK_UNIT = 256
WORK_UNIT_BYTES = 32 * 2**20
DEFAULT_DECODE_TIMEOUT_S = 10.0
DEFAULT_DECODE_MEMORY_MB = 3072


@dataclass(frozen=True)
class IngestOptions:
    """Limits and parallelism for ingest.

    Decoding runs in worker processes (at least one, whatever `workers` says) with a wall-clock limit per file and
    a memory ceiling per worker; `decoder` names the decode function (`module:function`), for tests and custom
    formats. `strict_jpeg` treats every libjpeg warning as corrupt data, even those that lose no pixels.
    """

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    workers: int = 0  # 0: one per CPU core
    decode_timeout_s: float = DEFAULT_DECODE_TIMEOUT_S
    decode_memory_mb: int = DEFAULT_DECODE_MEMORY_MB
    strict_jpeg: bool = False
    decoder: str = DEFAULT_DECODER


@dataclass
class IngestSummary:
    """What ingest did for one batch: counts a person asks for first, and where the manifest is."""

    batch_id: str
    manifest_path: Path
    total: int = 0
    ok: int = 0
    errors: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    formats: Counter = field(default_factory=Counter)
    noted: int = 0
    stored_bytes: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    workers: PoolStats = field(default_factory=PoolStats)


def ingest_batch(
    batch_dir: Path,
    layout: DataLayout,
    landing_root: Path,
    options: IngestOptions = IngestOptions(),
    progress: ProgressFn | None = None,
) -> IngestSummary:
    """Ingest every file of `batch_dir`; publish its pack, then its manifest, atomically.

    Memory stays bounded whatever the batch size (files are streamed, rows written in chunks); rows
    are in path order and the pack is named by its content, so ingesting the same batch twice gives
    byte-identical outputs.
    """
    start = time.monotonic()
    batch_dir = Path(batch_dir)
    batch_id = batch_dir.name
    summary = IngestSummary(batch_id, layout.raw_manifest(batch_id))
    decode = DecodeSettings(options.max_pixels, options.strict_jpeg, options.decoder)
    ctx = IngestContext(batch_id, str(batch_dir), os.path.realpath(landing_root), options.max_file_bytes, decode)
    total = count_batch_files(batch_dir)
    files = iter_batch_files(batch_dir, landing_root, summary.warnings)
    workers = 1 if total < PARALLEL_MIN_FILES else (options.workers or os.cpu_count() or 1)
    raw_dir = layout.raw_dir(batch_id)
    staged = raw_dir / ".manifest.staged.parquet"

    pack = PackWriter(raw_dir)
    try:
        rows = _store(_results(ctx, files, workers, options, summary), pack, summary)
        write_manifest(staged, RAW_MANIFEST_SCHEMA, _chunks(rows, summary, total, progress))
        if summary.stored_bytes:
            pack_name = pack.close()
        else:
            pack.abort()
            pack_name = ""
    except BaseException:
        pack.abort()
        staged.unlink(missing_ok=True)
        raise
    previous = _referenced_packs(summary.manifest_path)
    try:
        stored_path = str(Path("raw") / batch_id / pack_name)
        write_manifest(summary.manifest_path, RAW_MANIFEST_SCHEMA, _with_pack(staged, stored_path))
    except BaseException:
        if pack_name and pack_name not in previous:
            (raw_dir / pack_name).unlink(missing_ok=True)
        raise
    finally:
        staged.unlink(missing_ok=True)
    # The pack the replaced manifest named stays until the next ingest: a reader (clean_images) that read the old
    # manifest a moment ago is still reading its objects.
    remove_stale_packs(raw_dir, keep={pack_name, *previous})
    summary.seconds = time.monotonic() - start
    return summary


_COLUMNS = RAW_MANIFEST_SCHEMA.names
_OFFSET = _COLUMNS.index("stored_offset")
_STATUS, _LABEL, _FORMAT = _COLUMNS.index("status"), _COLUMNS.index("label"), _COLUMNS.index("format")
_ERROR_CODE, _NOTES = _COLUMNS.index("error_code"), _COLUMNS.index("notes")


def _referenced_packs(manifest: Path) -> set[str]:
    """Pack file names the currently published manifest points at (empty when there is none)."""
    if not manifest.is_file():
        return set()
    paths = pq.read_table(manifest, columns=["stored_path"]).column("stored_path").drop_null().unique().to_pylist()
    return {Path(p).name for p in paths}


def _store(results: Iterable[tuple[tuple, bytes | None]], pack: PackWriter, summary: IngestSummary) -> Iterator[list]:
    """Append each good file's bytes to the pack and record where they are (rows as lists, schema order)."""
    for values, data in results:
        row = list(values)
        if data is not None:
            row[_OFFSET] = pack.append(data)
            summary.stored_bytes += len(data)
        yield row


def _table(rows: list[list]) -> pa.Table:
    """Rows (lists in schema order) to an Arrow table, column by column (much faster than dicts)."""
    columns = list(zip(*rows, strict=True))
    return pa.Table.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip(columns, RAW_MANIFEST_SCHEMA, strict=True)],
        schema=RAW_MANIFEST_SCHEMA,
    )


def _chunks(
    rows: Iterable[list], summary: IngestSummary, total: int, progress: ProgressFn | None
) -> Iterator[pa.Table]:
    chunk: list[list] = []
    done = 0
    reporter = Progress(progress, total)
    for row in rows:
        done += 1
        _count(summary, row)
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            yield _table(chunk)
            chunk = []
        reporter.update(done)
    summary.total = done
    if chunk:
        yield _table(chunk)


def _with_pack(staged: Path, stored_path: str) -> Iterator[pa.Table]:
    """Re-read the staged manifest one row group at a time, filling in the now-known pack path."""
    reader = pq.ParquetFile(staged)
    column = RAW_MANIFEST_SCHEMA.get_field_index("stored_path")
    for group in range(reader.num_row_groups):
        table = reader.read_row_group(group)
        path = pc.if_else(pc.is_valid(table["stored_offset"]), pa.scalar(stored_path), pa.scalar(None, pa.string()))
        yield table.set_column(column, RAW_MANIFEST_SCHEMA.field(column), path)


def _count(summary: IngestSummary, row: list) -> None:
    if row[_STATUS] == "ok":
        summary.ok += 1
        summary.labels[row[_LABEL] or "(unlabeled)"] += 1
        summary.formats[row[_FORMAT]] += 1
    else:
        summary.errors[row[_ERROR_CODE]] += 1
    if row[_NOTES]:
        summary.noted += 1


def _units(ctx: IngestContext, files: Iterable[LandedFile]) -> Iterator[list[tuple[dict, bytes | None]]]:
    """Read files in the parent, in units of at most `WORK_UNIT` files or `WORK_UNIT_BYTES` bytes."""
    unit: list[tuple[dict, bytes | None]] = []
    size = 0
    for f in files:
        row, data = read_file(ctx, f)
        unit.append((row, data))
        size += len(data) if data else 0
        if len(unit) >= WORK_UNIT or size >= WORK_UNIT_BYTES:
            yield unit
            unit, size = [], 0
    if unit:
        yield unit


def _results(
    ctx: IngestContext, files: Iterable[LandedFile], workers: int, options: IngestOptions, summary: IngestSummary
) -> Iterator[tuple[tuple, bytes | None]]:
    """Rows in file order: the parent reads, workers decode under a time limit and a memory ceiling per file.

    A file that hangs, exhausts memory or crashes its worker gets its own error row; the worker is replaced
    and the batch goes on.
    """
    limits = PoolLimits(options.decode_timeout_s, options.decode_memory_mb)
    with SupervisedPool(
        "synthaug.ingest.file_check:make_checker",
        (ctx.decode,),
        workers=workers,
        limits=limits,
        preload=["synthaug.ingest.file_check"],
    ) as pool:
        for (row, data), outcome in pool.map_units(_units(ctx, files)):
            yield apply_outcome(row, data, outcome, limits)
        summary.workers = pool.stats
