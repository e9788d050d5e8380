"""Training tensors of one batch: the kept images of its clean set, split by content, resized and converted to
the configured size and channels, the train split augmented K times, written as uint8 `.npy` shards.

Layout under `DataLayout.tensors_dir(batch)`:

* `current.json` names the complete generation (`{"generation": ..., "data_version": ...}`); it is replaced
  atomically and only after the generation is complete, so readers never see a partial one;
* `<generation>/` holds, per stream (`train`, `train_aug`, `val`, `test`), shards `<stream>-NNNNN.x.npy`
  (uint8, N×C×H×W, memory-mappable) and `<stream>-NNNNN.y.npy` (int16 label index into the batch's own
  `classes` list, -1 = unlabeled), plus `index.parquet` (one row per stored image: stream, shard, row,
  image_id, copy, split, label, pixel_hash, source size, conversion notes) and `meta.json` (shapes, classes,
  counts, shard digests, config). Every file in a generation is byte-identical when the inputs and the
  config are, whatever the number of workers.

A generation is built in a hidden `.<generation>.partial` folder and renamed into place once complete;
leftovers of a killed run are removed by the next one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synthaug.core.atomic import atomic_output, atomic_write_bytes
from synthaug.core.errors import SynthaugError
from synthaug.core.layout import DataLayout
from synthaug.core.pools import bounded_map
from synthaug.core.progress import Progress, ProgressFn
from synthaug.tensors.config import FORMAT_VERSION, STREAMS, UNLABELED, UNLABELED_NAME, TensorConfig
from synthaug.tensors.prepare import WORKER_PRELOAD, ChunkJob, process_chunk
from synthaug.tensors.readback import tensor_store
from synthaug.tensors.shards import INDEX_SCHEMA, ShardWriter
from synthaug.tensors.splits import SPLITS, SplitRatios, content_key, split_codes

CHUNK_ROWS = 128
PARALLEL_MIN_ROWS = 512
INDEX_GROUP_ROWS = 4096
_MANIFEST_COLUMNS = ["image_id", "label", "status", "stored_path", "stored_offset", "file_size", "pixel_hash"]


class MissingCleanSet(SynthaugError, RuntimeError):
    """The batch has no clean manifest yet, so there is nothing to build tensors from."""


@dataclass
class TensorSummary:
    """What a build wrote: where, counts per stream and class, conversions, and the data version."""

    batch_id: str
    path: Path
    generation: str
    data_version: str
    counts: dict[str, int]
    per_class: dict[str, dict[str, int]]
    conversions: dict[str, int]
    classes: list[str]
    shards: int


@dataclass
class KeptRows:
    """The kept rows of a clean manifest in shard order, without copying the manifest: row positions and splits.

    About 80 bytes an image (dictionary-encoded manifest columns plus key and order); Python objects exist only
    for the chunk being handled.
    """

    table: pa.Table
    order: np.ndarray
    splits: np.ndarray

    def __len__(self) -> int:
        return len(self.order)

    def chunk(self, start: int, count: int) -> list[dict]:
        """Rows `start`..`start + count` as dicts, each with its `split`."""
        rows = self.table.take(pa.array(self.order[start : start + count])).to_pylist()
        for row, code in zip(rows, self.splits[start : start + count].tolist(), strict=True):
            row["split"] = SPLITS[code]
        return rows

    def classes(self) -> list[str]:
        """Sorted class names of the kept rows."""
        labels = pc.unique(self.table["label"].take(pa.array(self.order))).to_pylist()
        return sorted(str(label) for label in labels if label is not None)


def kept_rows(layout: DataLayout, batch_id: str, ratios: SplitRatios) -> KeptRows:
    """The kept rows of a batch's clean set in shard order: split, then content key, then manifest position.

    Ordering by a hash of the content mixes classes within every shard (landing folders are sorted by class).
    """
    path = layout.clean_manifest(batch_id)
    if not path.is_file():
        raise MissingCleanSet(
            f"clean_images has not been materialized for batch {batch_id} ({path} is missing); "
            "materialize clean_images for it first, then rerun training_tensors"
        )
    # decoded in slices, not as one column chunk: ~40 MiB less peak RSS at 100k rows
    manifest = pq.ParquetFile(path, read_dictionary=["label", "status", "stored_path"], pre_buffer=False)
    schema = pa.schema([manifest.schema_arrow.field(c) for c in _MANIFEST_COLUMNS])
    batches = [b.select(_MANIFEST_COLUMNS) for b in manifest.iter_batches(batch_size=8192, columns=_MANIFEST_COLUMNS)]
    table = pa.Table.from_batches(batches, schema=schema)
    kept = np.flatnonzero(pc.fill_null(pc.equal(table["status"], "kept"), False).to_numpy(zero_copy_only=False))
    hashes = table["pixel_hash"]
    keys = np.empty(len(table), np.uint64)
    for start in range(0, len(table), 8192):  # Python strings for one slice at a time
        piece = hashes.slice(start, 8192).to_pylist()
        keys[start : start + len(piece)] = [content_key(h) if h is not None else 0 for h in piece]
    keys = keys[kept]
    codes = split_codes(keys, ratios)
    order = np.lexsort((kept, keys, codes))
    return KeptRows(table, kept[order], codes[order])


def file_digest(path: Path) -> str:
    """SHA-256 of a file, read in blocks (the clean manifest's version, without loading it)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _note_kind(note: str) -> str:
    return note.split(" ", 1)[0]


def build_tensors(
    layout: DataLayout, batch_id: str, config: TensorConfig, workers: int = 0, progress: ProgressFn | None = None
) -> TensorSummary:
    """Build the training tensors of one batch into a new generation, then point `current.json` at it.

    Memory is bounded by the shard size and the rows in flight, never by the batch size (except the
    clean manifest's small columns). `workers=0` uses every core.
    """
    rows = kept_rows(layout, batch_id, config.ratios)
    clean_version = file_digest(layout.clean_manifest(batch_id))
    classes = rows.classes()
    local = {name: i for i, name in enumerate(classes)}
    workers = workers or os.cpu_count() or 1
    if len(rows) < PARALLEL_MIN_ROWS:
        workers = 1
    store = tensor_store(layout, batch_id)
    with store.draft() as draft:
        summary = _write_generation(layout, batch_id, config, rows, classes, local, draft.folder, workers, progress)
        meta = {
            "format": FORMAT_VERSION,
            "batch_id": batch_id,
            "layout": "NCHW uint8",
            "size": config.size,
            "channels": config.channels,
            "classes": classes,
            "unlabeled_index": UNLABELED,
            "streams": summary["streams"],
            "counts": summary["counts"],
            "per_class": summary["per_class"],
            "conversions": summary["conversions"],
            "config": config.to_dict(),
            "clean_version": clean_version,
        }
        meta_bytes = (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode()
        atomic_write_bytes(draft.folder / "meta.json", meta_bytes)
    data_version = hashlib.sha256(meta_bytes).hexdigest()[:16]
    store.publish(draft.name, data_version)
    return TensorSummary(
        batch_id=batch_id,
        path=store.root,
        generation=draft.name,
        data_version=data_version,
        counts=summary["counts"],
        per_class=summary["per_class"],
        conversions=summary["conversions"],
        classes=classes,
        shards=sum(len(s["shards"]) for s in summary["streams"].values()),
    )


def _write_generation(
    layout: DataLayout,
    batch_id: str,
    config: TensorConfig,
    rows: KeptRows,
    classes: list[str],
    local: dict[str, int],
    folder: Path,
    workers: int,
    progress: ProgressFn | None,
) -> dict:
    writers = {s: ShardWriter(folder, s, config.shard_size, config.channels, config.size) for s in STREAMS}
    per_class: dict[str, Counter] = {s: Counter() for s in STREAMS}
    conversions: Counter = Counter()

    def chunks() -> Iterator[list[dict]]:
        """The rows in pieces of CHUNK_ROWS, as Python objects only while one piece is handled."""
        for start in range(0, len(rows), CHUNK_ROWS):
            yield rows.chunk(start, CHUNK_ROWS)

    def job(chunk: list[dict]) -> ChunkJob:
        sources = [
            (r["image_id"], r["stored_path"], r["stored_offset"], r["file_size"], r["split"] == "train") for r in chunk
        ]
        return ChunkJob(
            str(layout.root), config.size, config.channels, config.fit, config.policy, config.copies, sources
        )

    reporter = Progress(progress, len(rows))
    done = 0
    index_rows: list[dict] = []
    with atomic_output(folder / "index.parquet") as tmp, pq.ParquetWriter(tmp, INDEX_SCHEMA) as sink:
        jobs = (job(c) for c in chunks())
        results = bounded_map(process_chunk, jobs, workers, preload=WORKER_PRELOAD)
        for chunk, result in zip(chunks(), results, strict=True):
            aug_row = 0
            for i, r in enumerate(chunk):
                label_index = local[r["label"]] if r["label"] is not None else UNLABELED
                width, height, channels = result.source_shapes[i]
                notes = result.notes[i]
                conversions.update(_note_kind(n) for n in notes)
                base = {
                    "image_id": r["image_id"],
                    "split": r["split"],
                    "label": r["label"],
                    "label_index": label_index,
                    "pixel_hash": r["pixel_hash"],
                    "source_width": width,
                    "source_height": height,
                    "source_channels": channels,
                    "notes": "; ".join(notes) or None,
                }
                index_rows.append(writers[r["split"]].add(result.images[i], label_index, base | {"copy": 0}))
                per_class[r["split"]][r["label"] or UNLABELED_NAME] += 1
                if r["split"] != "train":
                    continue
                for k in range(1, config.copies + 1):
                    row = writers["train_aug"].add(result.augmented[aug_row], label_index, base | {"copy": k})
                    index_rows.append(row)
                    per_class["train_aug"][r["label"] or UNLABELED_NAME] += 1
                    aug_row += 1
            if len(index_rows) >= INDEX_GROUP_ROWS:
                sink.write_table(pa.Table.from_pylist(index_rows, schema=INDEX_SCHEMA))
                index_rows = []
            done += len(chunk)
            reporter.update(done)
        if index_rows:
            sink.write_table(pa.Table.from_pylist(index_rows, schema=INDEX_SCHEMA))
        for writer in writers.values():
            writer.close()
    return {
        "streams": {s: {"rows": w.rows, "shards": w.shards} for s, w in writers.items()},
        "counts": {s: w.rows for s, w in writers.items()},
        "per_class": {s: dict(sorted(per_class[s].items())) for s in STREAMS},
        "conversions": dict(sorted(conversions.items())),
    }
