"""ingest_batch: one manifest row per landed file (bad ones included, with the reason), immutable
content-addressed copies of the good ones, and nothing in the landing folder touched."""

from __future__ import annotations

import builtins
import hashlib
import multiprocessing
import os
import signal
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import synthaug.ingest
from synthaug.hashing import pixel_hash, stable_id
from synthaug.ingest import IngestOptions, IngestSummary, ingest_batch
from synthaug.landing import batch_readiness
from synthaug.layout import DataLayout
from synthaug.manifest import RAW_MANIFEST_SCHEMA, read_manifest
from synthaug.samples import examples_by_group, manifest_digest

SEQUENTIAL = IngestOptions(workers=1)

# Every file of the hostile batch (see conftest.write_hostile_batch) and why it is there.
HOSTILE_FILES = [
    "cat/gradient.png",  # a plain good PNG
    "cat/photo.jpg",  # a plain good JPEG
    "cat/empty.png",  # zero bytes
    "cat/truncated.png",  # cut in half
    "cat/truncated.jpg",  # cut in half
    "cat/flipped.jpg",  # 20 entropy-coded bytes inverted
    "dog/readme.png",  # a text file with an image extension
    "dog/bomb.png",  # header claims 50,000 x 50,000 pixels
    "dog/deep16.png",  # 16-bit grey
    "dog/palette.png",  # palette with transparency
    "dog/cmyk.jpg",  # CMYK JPEG
    "dog/rotated.jpg",  # EXIF orientation 6
    "dog/animated.gif",  # three frames
    "dog/escape.png",  # symlink to a file outside the landing folder
    "dog/pipe.png",  # a FIFO
    "chat noir ü/photo été 猫 01.png",  # spaces and non-ASCII in folder and file names
    "loose file.png",  # directly under the batch: unlabeled
]


class Contains(str):
    """Equal to any string that contains every given part (for error messages that embed details)."""

    def __new__(cls, *parts: str):
        obj = super().__new__(cls, " ... ".join(parts))
        obj.parts = parts
        return obj

    def __eq__(self, other):
        return isinstance(other, str) and all(p in other for p in self.parts)

    __hash__ = str.__hash__


class Hex(str):
    """Equal to any lowercase hex string of the given length."""

    def __new__(cls, length: int):
        obj = super().__new__(cls, f"<{length} hex chars>")
        obj.length = length
        return obj

    def __eq__(self, other):
        return isinstance(other, str) and len(other) == self.length and all(c in "0123456789abcdef" for c in other)

    __hash__ = str.__hash__


EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected_row(batch_id: str, rel: str, e) -> dict:
    """The full manifest row a file must get, from what the fixture wrote (an independent oracle)."""
    read = e.data is not None
    row = {
        "image_id": stable_id(batch_id, rel),
        "batch_id": batch_id,
        "source_path": f"{batch_id}/{rel}",
        "label": e.label,
        "label_source": e.label_source,
        "format": None,
        "width": None,
        "height": None,
        "channels": None,
        "file_size": len(e.data) if read else None,
        "file_hash": sha256(e.data) if read else None,
        "pixel_hash": None,
        "stored_path": None,
        "status": e.status,
        "error_code": e.error_code,
        "error": Contains(*e.error_has) if e.status != "ok" else None,
        "notes": e.notes,
    }
    if e.status == "ok":
        digest = sha256(e.data)
        width, height, channels = e.size
        row.update(
            format=e.format,
            width=width,
            height=height,
            channels=channels,
            pixel_hash=pixel_hash(e.pixels) if e.pixels is not None else Hex(32),
            stored_path=f"objects/{digest[:2]}/{digest}{EXTENSIONS[e.format]}",
        )
    return row


def rows_by_source(manifest: Path) -> dict[str, dict]:
    rows = read_manifest(manifest).to_pylist()
    by_source = {r["source_path"]: r for r in rows}
    assert len(by_source) == len(rows), "one row per landed file"
    return by_source


def object_files(layout: DataLayout) -> dict[str, int]:
    """Every file under objects/ with its mtime (ns)."""
    if not layout.objects_dir.exists():
        return {}
    return {str(p.relative_to(layout.root)): p.stat().st_mtime_ns for p in layout.objects_dir.rglob("*") if p.is_file()}


def temp_leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if ".tmp-" in p.name]


@dataclass
class Ingested:
    hb: object
    layout: DataLayout
    summary: IngestSummary
    rows: dict[str, dict]
    landing_before: dict
    landing_after: dict
    outside_before: dict
    outside_after: dict
    opened: list[str]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, hostile_batch_writer, tree_snapshot) -> Ingested:
    """The hostile batch, ingested once sequentially while recording every path opened."""
    root = tmp_path_factory.mktemp("hostile")
    landing = root / "landing"
    landing.mkdir()
    hb = hostile_batch_writer(landing)
    layout = DataLayout(root / "data")
    landing_before, outside_before = tree_snapshot(landing), tree_snapshot(hb.outside_target.parent)
    opened: list[str] = []
    real_os_open, real_open = os.open, builtins.open

    def spy_os_open(path, *args, **kwargs):
        opened.append(os.fsdecode(path))
        return real_os_open(path, *args, **kwargs)

    def spy_open(file, *args, **kwargs):
        if isinstance(file, str | bytes | os.PathLike):
            opened.append(os.fsdecode(file))
        return real_open(file, *args, **kwargs)

    def on_alarm(signum, frame):
        raise TimeoutError("ingest blocked (on the FIFO?)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(30)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "open", spy_os_open)
            mp.setattr(builtins, "open", spy_open)
            summary = ingest_batch(hb.path, layout, landing, SEQUENTIAL)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return Ingested(
        hb,
        layout,
        summary,
        rows_by_source(summary.manifest_path),
        landing_before,
        tree_snapshot(landing),
        outside_before,
        tree_snapshot(hb.outside_target.parent),
        opened,
    )


def test_hostile_batch_fixture_matches_this_list(hostile):
    assert sorted(hostile.hb.expected) == sorted(HOSTILE_FILES)


def test_every_landed_file_gets_exactly_one_row_and_markers_get_none(hostile):
    assert hostile.summary.manifest_path == hostile.layout.raw_manifest("hostile-001")
    assert sorted(hostile.rows) == sorted(f"hostile-001/{rel}" for rel in HOSTILE_FILES)
    assert hostile.summary.total == len(HOSTILE_FILES)


@pytest.mark.parametrize("rel", HOSTILE_FILES)
def test_manifest_row_says_exactly_what_happened_to_each_file(hostile, rel):
    """Status, reason code, error text, notes, size and hashes of each row, compared as a whole."""
    row = hostile.rows[f"hostile-001/{rel}"]
    assert row == expected_row("hostile-001", rel, hostile.hb.expected[rel])


def test_summary_counts_what_a_person_asks_for_first(hostile):
    s = hostile.summary
    assert s.ok == 9
    assert s.errors == Counter(
        {"corrupt_data": 3, "refused": 2, "empty_file": 1, "not_an_image": 1, "too_many_pixels": 1}
    )
    assert s.labels == Counter({"cat": 2, "dog": 5, "chat noir ü": 1, "(unlabeled)": 1})
    assert s.formats == Counter({"PNG": 5, "JPEG": 3, "GIF": 1})
    assert s.noted == 5
    assert s.warnings == []
    assert s.seconds > 0


def test_no_good_file_is_lost_among_bad_ones(hostile):
    ok = {r["source_path"] for r in hostile.rows.values() if r["status"] == "ok"}
    assert ok == {f"hostile-001/{rel}" for rel in hostile.hb.good}
    assert len(ok) == 9


def test_good_files_are_stored_content_addressed_with_matching_sha256(hostile):
    landing_batch = hostile.hb.path
    stored = set()
    for row in hostile.rows.values():
        if row["status"] != "ok":
            continue
        digest = row["file_hash"]
        obj = hostile.layout.root / row["stored_path"]
        assert obj.parent == hostile.layout.objects_dir / digest[:2]
        assert obj.name.startswith(digest + ".")
        assert sha256(obj.read_bytes()) == digest
        source = landing_batch / row["source_path"].split("/", 1)[1]
        assert obj.read_bytes() == source.read_bytes()
        stored.add(row["stored_path"])
    assert set(object_files(hostile.layout)) == stored, "only good files are stored, each once"


def test_landing_folder_is_left_untouched(hostile):
    """Same entries, same bytes, same mtimes: ingest only ever reads the landing folder."""
    assert hostile.landing_after == hostile.landing_before
    assert hostile.outside_after == hostile.outside_before


def test_symlink_target_outside_landing_is_never_opened_or_copied(hostile):
    good = os.path.realpath(hostile.hb.path / "cat" / "gradient.png")
    assert good in hostile.opened, "the spy sees the files ingest reads"
    secret = hostile.hb.outside_target
    secret_paths = {str(secret), os.path.realpath(secret)}
    assert not secret_paths & set(hostile.opened)
    escape = hostile.hb.path / "dog" / "escape.png"
    assert str(escape) not in hostile.opened
    secret_hash = sha256(secret.read_bytes())
    assert not any(secret_hash in name for name in object_files(hostile.layout))
    assert all(r["file_hash"] != secret_hash for r in hostile.rows.values())


def test_ingest_leaves_no_temporary_files(hostile):
    assert temp_leftovers(hostile.layout.root) == []


def test_examples_by_group_decodes_stored_copies_per_label(hostile):
    groups = examples_by_group(hostile.layout, hostile.summary.manifest_path, "label", per_group=2)
    assert sorted(groups) == ["(none)", "cat", "chat noir ü", "dog"]
    assert [len(v) for k, v in sorted(groups.items())] == [1, 2, 1, 2]
    np.testing.assert_array_equal(groups["(none)"][0], hostile.hb.expected["loose file.png"].pixels)
    by_status = examples_by_group(hostile.layout, hostile.summary.manifest_path, "status", 100, where_status=None)
    assert list(by_status) == ["ok"], "failed files have no stored copy to show"
    assert len(by_status["ok"]) == 9


# --- reruns, parallelism, options ---------------------------------------------------------------------------


def test_ingesting_twice_gives_a_byte_identical_manifest_and_no_duplicate_objects(landing, layout, hostile_batch):
    first = ingest_batch(hostile_batch.path, layout, landing, SEQUENTIAL)
    manifest_bytes = first.manifest_path.read_bytes()
    objects = object_files(layout)
    digest = manifest_digest(first.manifest_path, ["source_path", "file_hash", "status"])

    second = ingest_batch(hostile_batch.path, layout, landing, SEQUENTIAL)
    assert second.manifest_path == first.manifest_path
    assert second.manifest_path.read_bytes() == manifest_bytes
    assert object_files(layout) == objects, "existing objects are neither duplicated nor rewritten"
    assert len(objects) == first.ok
    assert manifest_digest(second.manifest_path, ["source_path", "file_hash", "status"]) == digest
    assert temp_leftovers(layout.root) == []


def test_manifest_digest_changes_when_a_file_changes(landing, layout, image_bytes):
    batch = landing / "b1"
    (batch / "cat").mkdir(parents=True)
    (batch / "cat" / "a.png").write_bytes(image_bytes.png(image_bytes.gradient(8, 8)))
    columns = ["source_path", "file_hash"]
    before = manifest_digest(ingest_batch(batch, layout, landing, SEQUENTIAL).manifest_path, columns)
    (batch / "cat" / "a.png").write_bytes(image_bytes.png(image_bytes.gradient(8, 9)))
    after = manifest_digest(ingest_batch(batch, layout, landing, SEQUENTIAL).manifest_path, columns)
    assert before != after
    assert len(object_files(layout)) == 2, "the old object stays: objects are immutable"


def write_big_batch(batch: Path, n_files: int, image_bytes) -> None:
    """n_files small PNGs in three classes, with a few broken files mixed in."""
    base = image_bytes.gradient(6, 8)
    for i in range(n_files):
        path = batch / f"class{i % 3}" / f"img{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if i % 97 == 5:
            path.write_bytes(b"")
        elif i % 97 == 6:
            path.write_bytes(b"not an image")
        else:
            path.write_bytes(image_bytes.png(np.roll(base, i, axis=1) // (1 + i % 5)))


def test_parallel_ingest_gives_the_same_rows_as_sequential(tmp_path, image_bytes, monkeypatch):
    """More than PARALLEL_MIN_FILES files with workers=2 goes through a process pool; rows are identical."""
    landing = tmp_path / "landing"
    batch = landing / "big"
    n_files = synthaug.ingest.PARALLEL_MIN_FILES + 40
    write_big_batch(batch, n_files, image_bytes)

    contexts = []
    real_get_context = multiprocessing.get_context

    def spy_get_context(method=None):
        contexts.append(method)
        return real_get_context(method)

    monkeypatch.setattr(multiprocessing, "get_context", spy_get_context)
    sequential = ingest_batch(batch, DataLayout(tmp_path / "seq"), landing, IngestOptions(workers=1))
    assert contexts == []
    parallel = ingest_batch(batch, DataLayout(tmp_path / "par"), landing, IngestOptions(workers=2))
    assert contexts == ["forkserver"], "the parallel path was not taken"

    seq_rows = read_manifest(sequential.manifest_path).to_pylist()
    par_rows = read_manifest(parallel.manifest_path).to_pylist()
    assert len(seq_rows) == n_files
    assert par_rows == seq_rows
    assert parallel.errors == sequential.errors == Counter({"empty_file": 6, "not_an_image": 6})
    assert object_files(DataLayout(tmp_path / "par")).keys() == object_files(DataLayout(tmp_path / "seq")).keys()


def test_empty_batch_folder_gives_an_empty_manifest_and_is_not_ready(landing, layout):
    batch = landing / "b1"
    (batch / "cat").mkdir(parents=True)
    summary = ingest_batch(batch, layout, landing, SEQUENTIAL)
    assert (summary.total, summary.ok, summary.errors) == (0, 0, Counter())
    table = pq.read_table(summary.manifest_path)
    assert table.num_rows == 0
    assert table.schema.equals(RAW_MANIFEST_SCHEMA)
    ready, reason, _ = batch_readiness(batch, None, now=0.0, quiet_period_s=0.0)
    assert not ready
    assert "is empty" in reason


def test_max_pixels_option_refuses_images_over_it(landing, layout, image_bytes):
    batch = landing / "b1"
    batch.mkdir()
    (batch / "big.png").write_bytes(image_bytes.png(image_bytes.gradient(96, 128)))
    (batch / "small.png").write_bytes(image_bytes.png(image_bytes.gradient(32, 32)))
    summary = ingest_batch(batch, layout, landing, IngestOptions(max_pixels=5000, workers=1))
    rows = rows_by_source(summary.manifest_path)
    big, small = rows["b1/big.png"], rows["b1/small.png"]
    assert (big["status"], big["error_code"], big["width"], big["stored_path"]) == (
        "error",
        "too_many_pixels",
        None,
        None,
    )
    assert big["error"].startswith("128x96 = 12,288 pixels exceeds the limit of 5,000")
    assert (small["status"], small["width"], small["height"], small["channels"]) == ("ok", 32, 32, 3)


def test_max_file_bytes_option_refuses_larger_files_unhashed(landing, layout, image_bytes):
    batch = landing / "b1"
    batch.mkdir()
    data = image_bytes.png(image_bytes.gradient())
    (batch / "big.png").write_bytes(data)
    limit = len(data) - 1
    summary = ingest_batch(batch, layout, landing, IngestOptions(max_file_bytes=limit, workers=1))
    row = rows_by_source(summary.manifest_path)["b1/big.png"]
    assert (row["status"], row["error_code"], row["file_size"], row["file_hash"]) == (
        "error",
        "file_too_large",
        None,
        None,
    )
    assert row["error"] == f"file is {len(data):,} bytes, over the {limit:,}-byte limit"

    at_limit = ingest_batch(batch, layout, landing, IngestOptions(max_file_bytes=len(data), workers=1))
    assert rows_by_source(at_limit.manifest_path)["b1/big.png"]["status"] == "ok"


def test_labels_csv_and_its_warnings_reach_the_manifest_and_summary(landing, layout, image_bytes):
    batch = landing / "b1"
    (batch / "cat").mkdir(parents=True)
    png = image_bytes.png(image_bytes.gradient(8, 8))
    (batch / "cat" / "a.png").write_bytes(png)
    (batch / "unsorted.png").write_bytes(png)
    (batch / "labels.csv").write_text("file,label\nunsorted.png,dog\n../x.png,evil\n")
    summary = ingest_batch(batch, layout, landing, SEQUENTIAL)
    rows = rows_by_source(summary.manifest_path)
    assert sorted(rows) == ["b1/cat/a.png", "b1/unsorted.png"], "labels.csv itself is not an image row"
    assert (rows["b1/cat/a.png"]["label"], rows["b1/cat/a.png"]["label_source"]) == ("cat", "folder")
    assert (rows["b1/unsorted.png"]["label"], rows["b1/unsorted.png"]["label_source"]) == ("dog", "labels.csv")
    assert summary.warnings == ["labels.csv line 3: file '../x.png' is not a plain path inside the batch; skipped"]
    assert summary.labels == Counter({"cat": 1, "dog": 1})


def test_identical_files_under_two_labels_get_two_rows_and_one_object(landing, layout, image_bytes):
    batch = landing / "b1"
    png = image_bytes.png(image_bytes.gradient(8, 8))
    for rel in ("cat/a.png", "dog/a.png"):
        (batch / rel).parent.mkdir(parents=True, exist_ok=True)
        (batch / rel).write_bytes(png)
    rows = rows_by_source(ingest_batch(batch, layout, landing, SEQUENTIAL).manifest_path)
    assert rows["b1/cat/a.png"]["file_hash"] == rows["b1/dog/a.png"]["file_hash"] == sha256(png)
    assert rows["b1/cat/a.png"]["image_id"] != rows["b1/dog/a.png"]["image_id"]
    assert len(object_files(layout)) == 1


def test_symlink_inside_the_landing_folder_is_ingested_as_its_target(landing, layout, image_bytes):
    png = image_bytes.png(image_bytes.gradient(8, 8))
    (landing / "shared").mkdir()
    (landing / "shared" / "a.png").write_bytes(png)
    batch = landing / "b1"
    (batch / "cat").mkdir(parents=True)
    os.symlink(landing / "shared" / "a.png", batch / "cat" / "linked.png")
    row = rows_by_source(ingest_batch(batch, layout, landing, SEQUENTIAL).manifest_path)["b1/cat/linked.png"]
    assert (row["status"], row["file_hash"], row["label"]) == ("ok", sha256(png), "cat")


def test_progress_is_reported_at_the_end(landing, layout, image_bytes):
    batch = landing / "b1"
    batch.mkdir()
    for i in range(3):
        (batch / f"{i}.png").write_bytes(image_bytes.png(image_bytes.gradient(4, 4 + i)))
    calls = []
    ingest_batch(batch, layout, landing, SEQUENTIAL, progress=lambda done, total, s: calls.append((done, total)))
    assert calls == [(3, 3)]


def test_file_name_that_is_not_utf8_does_not_sink_the_batch(landing, layout, image_bytes):
    batch = landing / "b1"
    (batch / "cat").mkdir(parents=True)
    png = image_bytes.png(image_bytes.gradient(8, 8))
    (batch / "cat" / "good.png").write_bytes(png)
    with open(os.path.join(os.fsencode(batch / "cat"), b"latin1-caf\xe9.png"), "wb") as fh:
        fh.write(png)
    summary = ingest_batch(batch, layout, landing, SEQUENTIAL)
    rows = read_manifest(summary.manifest_path).to_pylist()
    assert len(rows) == 2
    assert "b1/cat/good.png" in {r["source_path"] for r in rows}
