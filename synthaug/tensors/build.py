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
import io
import json
import multiprocessing
import os
import shutil
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from synthaug.core.atomic import atomic_output, atomic_write_bytes, storage_error
from synthaug.core.layout import DataLayout
from synthaug.core.packs import read_object
from synthaug.core.progress import Progress, ProgressFn
from synthaug.ingest.imageio import decode_image
from synthaug.tensors.augment import Augmenter, AugmentPolicy
from synthaug.tensors.splits import SPLITS, SplitRatios, content_key, split_codes

FORMAT_VERSION = 1
STREAMS = ("train", "train_aug", "val", "test")
FITS = ("center_crop", "pad", "stretch")
UNLABELED = -1
UNLABELED_NAME = "(unlabeled)"
CHUNK_ROWS = 128
PARALLEL_MIN_ROWS = 512
INDEX_GROUP_ROWS = 4096
_MANIFEST_COLUMNS = ["image_id", "label", "status", "stored_path", "stored_offset", "file_size", "pixel_hash"]
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


class MissingCleanSet(RuntimeError):
    """The batch has no clean manifest yet, so there is nothing to build tensors from."""


@dataclass(frozen=True)
class TensorConfig:
    """How kept images become training tensors; invalid values raise ValueError naming the field."""

    size: int = 32
    channels: int = 1
    copies: int = 2
    fit: str = "center_crop"
    ratios: SplitRatios = field(default_factory=SplitRatios)
    policy: AugmentPolicy | None = None
    shard_size: int = 4096

    def __post_init__(self) -> None:
        _check_int("size", self.size, 4, 1024)
        if self.channels not in (1, 3):
            raise ValueError(f"tensors channels must be 1 (grey) or 3 (RGB), got {self.channels!r}")
        _check_int("copies", self.copies, 0, 64)
        _check_int("shard_size", self.shard_size, 1, 1 << 20)
        if self.fit not in FITS:
            raise ValueError(f"tensors fit must be one of {list(FITS)}, got {self.fit!r}")
        if self.policy is None:
            object.__setattr__(self, "policy", AugmentPolicy.for_channels(self.channels))
        elif self.policy.channels != self.channels:
            raise ValueError(
                f"augmentation channels ({self.policy.channels}) must equal tensors channels ({self.channels})"
            )

    def to_dict(self) -> dict[str, Any]:
        """Every setting, for metadata and `meta.json`."""
        return {
            "size": self.size,
            "channels": self.channels,
            "copies": self.copies,
            "fit": self.fit,
            "ratios": {s: getattr(self.ratios, s) for s in SPLITS},
            "policy": self.policy.to_dict(),
            "shard_size": self.shard_size,
        }


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"tensors {name} must be an integer in [{low}, {high}], got {value!r}")


# --------------------------------------------------------------------------------------------------
# Per image: resize and channel conversion (runs in the workers)
# --------------------------------------------------------------------------------------------------


def prepare_image(pixels: np.ndarray, size: int, channels: int, fit: str) -> tuple[np.ndarray, list[str]]:
    """Convert decoded pixels to `size`×`size`×`channels` uint8; return them with a note for every change."""
    notes: list[str] = []
    source_channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if source_channels != channels:
        if channels == 1:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
            notes.append("rgb->grey")
        else:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
            notes.append("grey->rgb")
    h, w = pixels.shape[:2]
    if h != w and fit == "center_crop":
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        pixels = pixels[y0 : y0 + side, x0 : x0 + side]
        notes.append(f"center-cropped {w}x{h}->{side}x{side}")
    elif h != w and fit == "pad":
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        pixels = cv2.copyMakeBorder(pixels, top, side - h - top, left, side - w - left, cv2.BORDER_CONSTANT, value=0)
        notes.append(f"padded {w}x{h}->{side}x{side}")
    elif h != w:
        notes.append(f"stretched {w}x{h}")
    ph, pw = pixels.shape[:2]
    if (ph, pw) != (size, size):
        shrinking = ph > size or pw > size
        pixels = cv2.resize(
            np.ascontiguousarray(pixels),
            (size, size),
            interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
        )
        notes.append(f"resized {pw}x{ph}->{size}x{size}")
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return np.ascontiguousarray(pixels), notes


def to_chw(images: list[np.ndarray], channels: int, size: int) -> np.ndarray:
    """Stack HxWxC images into one contiguous N×C×H×W uint8 array (the shard layout)."""
    out = np.empty((len(images), channels, size, size), dtype=np.uint8)
    for i, img in enumerate(images):
        out[i] = img.transpose(2, 0, 1)
    return out


@dataclass(frozen=True)
class _Job:
    root: str
    size: int
    channels: int
    fit: str
    policy: AugmentPolicy
    copies: int
    rows: list[tuple[str, str, int, int, bool]]  # image_id, stored_path, offset, size, is_train


@dataclass
class ChunkResult:
    """One chunk of rows processed: originals, their augmented copies (train rows only), notes per row."""

    images: np.ndarray
    augmented: np.ndarray
    notes: list[list[str]]
    source_shapes: list[tuple[int, int, int]]


_AUGMENTERS: dict[tuple[AugmentPolicy, int], Augmenter] = {}


def augmenter_for(policy: AugmentPolicy, size: int) -> Augmenter:
    """One Augmenter per policy and size in each process (building a Compose costs more than a call)."""
    key = (policy, size)
    if key not in _AUGMENTERS:
        _AUGMENTERS[key] = Augmenter(policy, size)
    return _AUGMENTERS[key]


def augment_images(
    images: list[np.ndarray], image_ids: list[str], policy: AugmentPolicy, size: int, copies: int
) -> np.ndarray:
    """The augmentation path of `training_tensors`: `copies` seeded copies of each HxWxC image, N·K×C×H×W."""
    augmenter = augmenter_for(policy, size)
    out = []
    for image, image_id in zip(images, image_ids, strict=True):
        out.extend(augmenter.copies(image, image_id, copies))
    return to_chw(out, policy.channels, size)


def _process_chunk(job: _Job) -> ChunkResult:
    prepared, notes, shapes, train_images, train_ids = [], [], [], [], []
    for image_id, stored_path, offset, nbytes, is_train in job.rows:
        try:
            pixels = decode_image(read_object(Path(job.root), stored_path, offset, nbytes)).pixels
        except Exception as exc:  # noqa: BLE001 - name the image whose stored copy is unusable
            raise RuntimeError(
                f"image {image_id} ({stored_path} @ {offset}) is kept in the clean set but cannot be read back: "
                f"{exc}; rematerialize raw_images and clean_images for this batch"
            ) from exc
        shapes.append((pixels.shape[1], pixels.shape[0], 1 if pixels.ndim == 2 else pixels.shape[2]))
        image, image_notes = prepare_image(pixels, job.size, job.channels, job.fit)
        prepared.append(image)
        notes.append(image_notes)
        if is_train:
            train_images.append(image)
            train_ids.append(image_id)
    augmented = augment_images(train_images, train_ids, job.policy, job.size, job.copies)
    return ChunkResult(to_chw(prepared, job.channels, job.size), augmented, notes, shapes)


def parallel_map(fn: Callable[[Any], Any], jobs: Iterable[Any], workers: int) -> Iterator[Any]:
    """`fn` over `jobs` in order, on `workers` forkserver processes with at most 2 jobs per worker in flight,
    so memory does not grow with the number of jobs; a dead worker raises `BrokenProcessPool`."""
    if workers <= 1:
        yield from map(fn, jobs)
        return
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["synthaug.tensors.build", "albumentations"])
    jobs = iter(jobs)
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        pending = deque(pool.submit(fn, job) for job in islice(jobs, 2 * workers))
        while pending:
            result = pending.popleft().result()
            for job in islice(jobs, 1):
                pending.append(pool.submit(fn, job))
            yield result


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


class _ShardWriter:
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
        name = f"{self.stream}-{len(self.shards):05d}"
        x = np.stack(self.images) if self.images else np.empty((0, *self.shape), np.uint8)
        y = np.asarray(self.labels, dtype=np.int16)
        self.images, self.labels = [], []
        entry = {"name": name, "rows": len(x)}
        for suffix, array in (("x", x), ("y", y)):
            data = _npy_bytes(array)
            atomic_write_bytes(self.folder / f"{name}.{suffix}.npy", data)
            entry[f"{suffix}_sha256"] = hashlib.sha256(data).hexdigest()
        self.shards.append(entry)
        self.rows += len(x)

    def close(self) -> None:
        if self.images or not self.shards:
            self.flush()


# --------------------------------------------------------------------------------------------------
# The batch
# --------------------------------------------------------------------------------------------------


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
    tensors_dir = layout.tensors_dir(batch_id)
    generation = f"g-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    staging = tensors_dir / f".{generation}.partial"
    _remove_stale(tensors_dir, keep=_current_generation(layout, batch_id))
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise storage_error(staging, exc) from exc
    try:
        summary = _write_generation(layout, batch_id, config, rows, classes, local, staging, workers, progress)
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
        atomic_write_bytes(staging / "meta.json", meta_bytes)
        final = layout.tensors_generation(batch_id, generation)
        try:
            os.rename(staging, final)
        except OSError as exc:
            raise storage_error(final, exc) from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    data_version = hashlib.sha256(meta_bytes).hexdigest()[:16]
    pointer = {"generation": generation, "data_version": data_version}
    try:
        atomic_write_bytes(layout.tensors_pointer(batch_id), (json.dumps(pointer) + "\n").encode())
    except BaseException:
        if _current_generation(layout, batch_id) != generation:
            shutil.rmtree(final, ignore_errors=True)
        raise
    _remove_stale(tensors_dir, keep=generation)
    return TensorSummary(
        batch_id=batch_id,
        path=tensors_dir,
        generation=generation,
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
    writers = {s: _ShardWriter(folder, s, config.shard_size, config.channels, config.size) for s in STREAMS}
    per_class: dict[str, Counter] = {s: Counter() for s in STREAMS}
    conversions: Counter = Counter()

    def chunks() -> Iterator[list[dict]]:
        """The rows in pieces of CHUNK_ROWS, as Python objects only while one piece is handled."""
        for start in range(0, len(rows), CHUNK_ROWS):
            yield rows.chunk(start, CHUNK_ROWS)

    def job(chunk: list[dict]) -> _Job:
        sources = [
            (r["image_id"], r["stored_path"], r["stored_offset"], r["file_size"], r["split"] == "train") for r in chunk
        ]
        return _Job(str(layout.root), config.size, config.channels, config.fit, config.policy, config.copies, sources)

    reporter = Progress(progress, len(rows))
    done = 0
    index_rows: list[dict] = []
    with atomic_output(folder / "index.parquet") as tmp, pq.ParquetWriter(tmp, INDEX_SCHEMA) as sink:
        results = parallel_map(_process_chunk, (job(c) for c in chunks()), workers)
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


def _current_generation(layout: DataLayout, batch_id: str) -> str | None:
    path = layout.tensors_pointer(batch_id)
    if not path.is_file():
        return None
    return json.loads(path.read_text())["generation"]


def _remove_stale(tensors_dir: Path, keep: str | None) -> None:
    """Delete generations other than `keep`, and partial ones left by killed runs (caller holds the lock)."""
    if not tensors_dir.is_dir():
        return
    for entry in tensors_dir.iterdir():
        name = entry.name
        if entry.is_dir() and name != keep and (name.startswith("g-") or name.startswith(".g-")):
            shutil.rmtree(entry, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# Reading back
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSet:
    """The current generation of a batch's tensors, as its readers see it."""

    batch_id: str
    path: Path
    meta: dict
    data_version: str

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def shape(self) -> tuple[int, int, int]:
        """C, H, W of every image."""
        return (self.meta["channels"], self.meta["size"], self.meta["size"])

    def shards(self, stream: str) -> list[tuple[Path, Path, int]]:
        """(images path, labels path, rows) of each shard of a stream, in order."""
        if stream not in STREAMS:
            raise ValueError(f"unknown stream {stream!r}; streams are {list(STREAMS)}")
        return [
            (self.path / f"{s['name']}.x.npy", self.path / f"{s['name']}.y.npy", int(s["rows"]))
            for s in self.meta["streams"][stream]["shards"]
        ]

    def read_stream(self, stream: str, limit: int | None = None) -> np.ndarray:
        """The first `limit` (default all) images of a stream as one N×C×H×W array (small reads only)."""
        parts, left = [], limit
        for x_path, _, rows in self.shards(stream):
            if left is not None and left <= 0:
                break
            take = rows if left is None else min(rows, left)
            parts.append(np.array(np.load(x_path, mmap_mode="r")[:take]))
            left = None if left is None else left - take
        return np.concatenate(parts) if parts else np.empty((0, *self.shape), np.uint8)


def current_tensors(layout: DataLayout, batch_id: str) -> TensorSet | None:
    """The batch's current tensors, or None when `training_tensors` has not been materialized for it."""
    pointer = layout.tensors_pointer(batch_id)
    if not pointer.is_file():
        return None
    info = json.loads(pointer.read_text())
    path = layout.tensors_generation(batch_id, info["generation"])
    meta = json.loads((path / "meta.json").read_text())
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path} has tensor format {meta.get('format')}, expected {FORMAT_VERSION}: rematerialize it")
    return TensorSet(batch_id, path, meta, info["data_version"])


def augmentation_examples(tensor_set: TensorSet, count: int = 6) -> dict[str, list[np.ndarray]]:
    """Before/after pairs for a gallery: the first `count` train images, each followed by its augmented copies."""
    copies = int(tensor_set.meta["config"]["copies"])
    originals = tensor_set.read_stream("train", count)
    augmented = tensor_set.read_stream("train_aug", len(originals) * copies)
    index = pq.read_table(
        tensor_set.path / "index.parquet", columns=["image_id", "label"], filters=[("stream", "=", "train")]
    )
    examples = {}
    for i, r in enumerate(index.slice(0, len(originals)).to_pylist()):
        images = [originals[i]] + [augmented[i * copies + k] for k in range(copies)]
        examples[f"{r['label'] or UNLABELED_NAME} {r['image_id'][:8]}"] = [_hwc(img) for img in images]
    return examples


def _hwc(image: np.ndarray) -> np.ndarray:
    """C×H×W to H×W (grey) or H×W×3, the layout thumbnails take."""
    return image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
