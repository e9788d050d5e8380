"""Pick example images from a manifest (per label, per reason) for galleries and quick looks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from synthaug.core.layout import DataLayout
from synthaug.core.packs import read_object
from synthaug.ingest.imageio import ImageDecodeError, decode_image


def manifest_digest(path: Path, columns: list[str]) -> str:
    """Short hash of the given manifest columns: a data version that changes only when the content does."""
    table = pq.read_table(path, columns=columns)
    h = hashlib.sha256()
    for name in columns:
        h.update(name.encode())
        for value in table.column(name).to_pylist():
            h.update(b"\x00" if value is None else str(value).encode("utf-8", "surrogateescape"))
            h.update(b"\x1f")
    return h.hexdigest()[:16]


def examples_by_group(
    layout: DataLayout, manifest: Path, group_column: str, per_group: int = 8, where_status: str | None = "ok"
) -> dict[str, list[np.ndarray]]:
    """First `per_group` decodable stored images of each value of `group_column`, in manifest order."""
    columns = [group_column, "stored_path", "stored_offset", "file_size", "status"]
    table = pq.read_table(manifest, columns=columns).to_pylist()
    groups: dict[str, list[np.ndarray]] = {}
    for row in table:
        if where_status is not None and row["status"] != where_status:
            continue
        if not row["stored_path"]:
            continue
        key = row[group_column] if row[group_column] is not None else "(none)"
        images = groups.setdefault(key, [])
        if len(images) >= per_group:
            continue
        try:
            data = read_object(layout.root, row["stored_path"], row["stored_offset"], row["file_size"])
            images.append(decode_image(data).pixels)
        except (OSError, ImageDecodeError):
            continue
    return dict(sorted(groups.items()))
