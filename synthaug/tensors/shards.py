"""The files of a tensors generation as they are written: per stream, shards of uint8 N×C×H×W images
(`<stream>-NNNNN.x.npy`) and int16 label indices (`<stream>-NNNNN.y.npy`), and the schema of `index.parquet`."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pyarrow as pa

from synthaug.core.atomic import atomic_write_bytes

INDEX_SCHEMA = pa.schema(
    [
        ("stream", pa.string()),
        ("shard", pa.int32()),
        ("row", pa.int32()),
        ("image_id", pa.string()),
        ("copy", pa.int16()),
        ("split", pa.string()),
        ("label", pa.string()),
        ("label_index", pa.int16()),
        ("pixel_hash", pa.string()),
        ("source_width", pa.int32()),
        ("source_height", pa.int32()),
        ("source_channels", pa.int8()),
        ("notes", pa.string()),
    ]
)
"""One row per stored image of `index.parquet`: where it is (stream, shard, row), what it is and how it was
converted."""


def npy_bytes(array: np.ndarray) -> bytes:
    """The `.npy` file of an array, in memory (so its digest and an atomic write use the same bytes)."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


class ShardWriter:
    """Buffers one stream's rows and writes full shards (images and labels) atomically."""

    def __init__(self, folder: Path, stream: str, shard_size: int, channels: int, size: int) -> None:
        self.folder, self.stream, self.shard_size = folder, stream, shard_size
        self.shape = (channels, size, size)
        self.images: list[np.ndarray] = []
        self.labels: list[int] = []
        self.shards: list[dict] = []
        self.rows = 0

    def add(self, image: np.ndarray, label_index: int, index_row: dict) -> dict:
        """Buffer one image; return its index row with stream, shard and row filled in."""
        index_row.update(stream=self.stream, shard=len(self.shards), row=len(self.images))
        self.images.append(image)
        self.labels.append(label_index)
        if len(self.images) >= self.shard_size:
            self.flush()
        return index_row

    def flush(self) -> None:
        """Write the buffered rows as the next shard and record its name, rows and digests."""
        name = f"{self.stream}-{len(self.shards):05d}"
        x = np.stack(self.images) if self.images else np.empty((0, *self.shape), np.uint8)
        y = np.asarray(self.labels, dtype=np.int16)
        self.images, self.labels = [], []
        entry = {"name": name, "rows": len(x)}
        for suffix, array in (("x", x), ("y", y)):
            data = npy_bytes(array)
            atomic_write_bytes(self.folder / f"{name}.{suffix}.npy", data)
            entry[f"{suffix}_sha256"] = hashlib.sha256(data).hexdigest()
        self.shards.append(entry)
        self.rows += len(x)

    def close(self) -> None:
        """Write what is left; a stream with no rows still gets one empty shard, so readers find its shape."""
        if self.images or not self.shards:
            self.flush()
