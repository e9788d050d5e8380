"""What the ingest tests read back: manifest rows, stored objects, packs, every file under a data root, and
temporary files that a finished or failed ingest must not leave behind."""

from __future__ import annotations

import fnmatch
import hashlib
from pathlib import Path

import numpy as np
import xxhash

from synthaug.core.layout import DataLayout
from synthaug.core.manifest import read_manifest
from synthaug.core.packs import read_object
from synthaug.ingest.batch import IngestOptions

SEQUENTIAL = IngestOptions(workers=1)


def sha256(data: bytes) -> str:
    """Hex SHA-256 of `data`, computed here rather than by the code under test."""
    return hashlib.sha256(data).hexdigest()


def xxh3_pixels(pixels: np.ndarray) -> str:
    """The pixel hash, computed independently: XXH3-128 over repr(shape), then the uint8 pixel bytes."""
    h = xxhash.xxh3_128(repr(tuple(pixels.shape)).encode())
    h.update(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
    return h.hexdigest()


def rows_by_source(manifest: Path) -> dict[str, dict]:
    """Manifest rows keyed by source path, in manifest order."""
    rows = read_manifest(manifest).to_pylist()
    by_source = {r["source_path"]: r for r in rows}
    assert len(by_source) == len(rows), "one row per landed file"
    return by_source


def stored_object(layout: DataLayout, row: dict) -> bytes:
    return read_object(layout.root, row["stored_path"], row["stored_offset"], row["file_size"])


def data_files(layout: DataLayout) -> dict[str, bytes]:
    """Every regular file under the data root (hidden ones included) with its bytes."""
    if not layout.root.exists():
        return {}
    return {str(p.relative_to(layout.root)): p.read_bytes() for p in layout.root.rglob("*") if p.is_file()}


def packs(layout: DataLayout, batch_id: str) -> dict[str, bytes]:
    """The packs of one batch: file name -> bytes."""
    return {p.name: p.read_bytes() for p in layout.raw_dir(batch_id).glob("pack-*.bin")}


TEMP_PATTERNS = (".pack-*.tmp", ".manifest.staged.parquet", "*.tmp-*")


def temp_leftovers(root: Path) -> list[Path]:
    """Temporary files of a pack, the staged manifest, or an atomic write (and any other hidden file)."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and (p.name.startswith(".") or any(fnmatch.fnmatch(p.name, pat) for pat in TEMP_PATTERNS))
    )
