"""Ingest one landed batch: decode every file fully, keep an immutable content-addressed copy of each
good one, and write a manifest with one row per file (bad files included, with the reason)."""

from __future__ import annotations

import multiprocessing
import os
import stat
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from synthaug.atomic import atomic_write_bytes
from synthaug.hashing import file_hash, pixel_hash, stable_id
from synthaug.imageio import DEFAULT_MAX_PIXELS, FORMAT_EXTENSIONS, ImageDecodeError, decode_image
from synthaug.landing import LandedFile, is_valid_utf8, printable, scan_batch
from synthaug.layout import DataLayout
from synthaug.manifest import RAW_MANIFEST_SCHEMA, write_manifest

DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024
CHUNK_ROWS = 2048
PARALLEL_MIN_FILES = 512

ProgressFn = Callable[[int, int, float], None]


@dataclass(frozen=True)
class IngestOptions:
    """Limits and parallelism for ingest."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    workers: int = 0  # 0: one per CPU core


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
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class _Task:
    batch_id: str
    batch_dir: str
    landing_real: str
    data_root: str
    file: LandedFile
    max_pixels: int
    max_file_bytes: int


def ingest_batch(
    batch_dir: Path,
    layout: DataLayout,
    landing_root: Path,
    options: IngestOptions = IngestOptions(),
    progress: ProgressFn | None = None,
) -> IngestSummary:
    """Ingest every file of `batch_dir` and write `layout.raw_manifest(batch)` atomically.

    Memory stays bounded by the chunk size, whatever the batch size; rows are in path order, so
    ingesting the same batch twice gives the same manifest.
    """
    start = time.monotonic()
    scan = scan_batch(batch_dir, landing_root)
    batch_id = scan.batch_id
    summary = IngestSummary(batch_id, layout.raw_manifest(batch_id), warnings=list(scan.warnings))
    tasks = [
        _Task(
            batch_id,
            str(batch_dir),
            os.path.realpath(landing_root),
            str(layout.root),
            f,
            options.max_pixels,
            options.max_file_bytes,
        )
        for f in scan.files
    ]
    total = len(tasks)

    def chunks() -> Iterator[list[dict]]:
        chunk: list[dict] = []
        for done, row in enumerate(_run(tasks, options.workers), start=1):
            _count(summary, row)
            chunk.append(row)
            if len(chunk) >= CHUNK_ROWS:
                yield chunk
                chunk = []
            if progress is not None and (done % CHUNK_ROWS == 0 or done == total):
                progress(done, total, time.monotonic() - start)
        yield chunk

    summary.total = write_manifest(summary.manifest_path, RAW_MANIFEST_SCHEMA, chunks())
    summary.seconds = time.monotonic() - start
    return summary


def _count(summary: IngestSummary, row: dict) -> None:
    if row["status"] == "ok":
        summary.ok += 1
        summary.labels[row["label"] or "(unlabeled)"] += 1
        summary.formats[row["format"]] += 1
    else:
        summary.errors[row["error_code"]] += 1
    if row["notes"]:
        summary.noted += 1


def _run(tasks: list[_Task], workers: int) -> Iterator[dict]:
    """Process tasks in order, in a pool of worker processes when the batch is large enough to pay off."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(tasks) < PARALLEL_MIN_FILES:
        yield from map(ingest_file, tasks)
        return
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["synthaug.ingest"])
    with ctx.Pool(workers) as pool:
        yield from pool.imap(ingest_file, tasks, chunksize=64)


def ingest_file(task: _Task) -> dict:
    """Read, validate, hash and store one landed file; return its manifest row (never raises for bad data)."""
    row = _ingest_file(task)
    if row["error"]:
        row["error"] = printable(row["error"])
    return row


def _ingest_file(task: _Task) -> dict:
    f = task.file
    row = {name: None for name in RAW_MANIFEST_SCHEMA.names}
    row.update(
        image_id=stable_id(task.batch_id, f.rel_path),
        batch_id=task.batch_id,
        source_path=f"{task.batch_id}/{printable(f.rel_path)}",
        label=f.label,
        label_source=f.label_source,
        status="error",
    )
    if f.refused:
        row.update(error_code="refused", error=f.refused)
        return row
    try:
        data = _read_landed(os.path.join(task.batch_dir, f.rel_path), task.landing_real, task.max_file_bytes)
    except _Refused as exc:
        row.update(error_code=exc.code, error=str(exc))
        return row
    row["file_size"] = len(data)
    digest = file_hash(data)
    row["file_hash"] = digest
    try:
        decoded = decode_image(data, max_pixels=task.max_pixels, extension=PurePosixPath(f.rel_path).suffix)
    except ImageDecodeError as exc:
        row.update(error_code=exc.code, error=str(exc))
        return row
    extension = FORMAT_EXTENSIONS.get(decoded.format, ".bin")
    rel_object = f"objects/{digest[:2]}/{digest}{extension}"
    target = os.path.join(task.data_root, rel_object)
    if not os.path.exists(target):
        atomic_write_bytes(Path(target), data, fsync=False)
    row.update(
        format=decoded.format,
        width=decoded.width,
        height=decoded.height,
        channels=decoded.channels,
        pixel_hash=pixel_hash(decoded.pixels),
        stored_path=rel_object,
        status="ok",
        notes="; ".join(_name_notes(f.rel_path) + decoded.notes) or None,
    )
    return row


def _name_notes(rel_path: str) -> list[str]:
    if is_valid_utf8(rel_path):
        return []
    return ["file name is not valid UTF-8: source_path shows the undecodable bytes as \\x escapes"]


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _read_landed(path: str, landing_real: str, max_file_bytes: int) -> bytes:
    """Read a landed file without following it out of the landing folder or blocking on a pipe."""
    real = os.path.realpath(path)
    if os.path.commonpath([landing_real, real]) != landing_real:
        raise _Refused("refused", f"path resolves outside the landing folder (to {real})")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise _Refused("unreadable", f"cannot open the file: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Refused("refused", "not a regular file (device, socket or pipe)")
        if st.st_size > max_file_bytes:
            raise _Refused("file_too_large", f"file is {st.st_size:,} bytes, over the {max_file_bytes:,}-byte limit")
        chunks = []
        remaining = max_file_bytes + 1
        while remaining > 0:
            block = os.read(fd, min(remaining, 1 << 20))
            if not block:
                break
            chunks.append(block)
            remaining -= len(block)
        data = b"".join(chunks)
        if len(data) > max_file_bytes:
            raise _Refused("file_too_large", f"file grew past the {max_file_bytes:,}-byte limit while being read")
        return data
    except OSError as exc:
        raise _Refused("unreadable", f"reading the file failed: {exc.strerror}") from None
    finally:
        os.close(fd)
