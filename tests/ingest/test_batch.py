"""ingest_batch: one manifest row per landed file (bad ones included, with the reason), the bytes
of the good ones appended in manifest order to one immutable pack named by its own SHA-256, and nothing in
the landing folder touched."""

from __future__ import annotations

import builtins
import errno
import fnmatch
import hashlib
import os
import re
import signal
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import xxhash

import synthaug.ingest.batch
import synthaug.ingest.file_check
from synthaug.core.hashing import stable_id
from synthaug.core.layout import DataLayout
from synthaug.core.manifest import read_manifest, write_manifest
from synthaug.core.packs import read_object
from synthaug.ingest.batch import RAW_MANIFEST_SCHEMA, IngestOptions, IngestSummary, ingest_batch
from synthaug.ingest.landing import batch_readiness
from synthaug.ingest.samples import examples_by_group, manifest_digest

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


class Matcher(str):
    """A string that compares equal to every string its `matches` accepts (shown as its description)."""

    def matches(self, other: str) -> bool:
        raise NotImplementedError

    def __eq__(self, other):
        return isinstance(other, str) and self.matches(other)

    def __ne__(self, other):
        return not self == other

    __hash__ = str.__hash__


class Contains(Matcher):
    """Equal to any string that contains every given part (for error messages that embed details)."""

    def __new__(cls, *parts: str):
        obj = super().__new__(cls, " ... ".join(parts))
        obj.parts = parts
        return obj

    def matches(self, other: str) -> bool:
        return all(p in other for p in self.parts)


class Hex(Matcher):
    """Equal to any lowercase hex string of the given length."""

    def __new__(cls, length: int):
        obj = super().__new__(cls, f"<{length} hex chars>")
        obj.length = length
        return obj

    def matches(self, other: str) -> bool:
        return len(other) == self.length and all(c in "0123456789abcdef" for c in other)


class PackPath(Matcher):
    """Equal to the data-root-relative path of any pack of the batch: `raw/<batch>/pack-<16 hex>.bin`."""

    def __new__(cls, batch_id: str):
        obj = super().__new__(cls, f"raw/{batch_id}/pack-<16 hex chars>.bin")
        obj.pattern = re.compile(rf"raw/{re.escape(batch_id)}/pack-[0-9a-f]{{16}}\.bin")
        return obj

    def matches(self, other: str) -> bool:
        return self.pattern.fullmatch(other) is not None


class Offset:
    """Equal to any non-negative int (the exact offsets are checked against the pack itself)."""

    def __eq__(self, other):
        return isinstance(other, int) and not isinstance(other, bool) and other >= 0

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return "<offset >= 0>"

    __hash__ = None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def xxh3_pixels(pixels: np.ndarray) -> str:
    """The pixel hash, computed independently: XXH3-128 over repr(shape), then the uint8 pixel bytes."""
    h = xxhash.xxh3_128(repr(tuple(pixels.shape)).encode())
    h.update(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
    return h.hexdigest()


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
        "stored_offset": None,
        "status": e.status,
        "error_code": e.error_code,
        "error": Contains(*e.error_has) if e.status != "ok" else None,
        "error_type": None,
        "notes": e.notes,
    }
    if e.status == "ok":
        width, height, channels = e.size
        row.update(
            format=e.format,
            width=width,
            height=height,
            channels=channels,
            pixel_hash=xxh3_pixels(e.pixels) if e.pixels is not None else Hex(32),
            stored_path=PackPath(batch_id),
            stored_offset=Offset(),
        )
    return row


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


def test_good_files_are_stored_in_one_pack_named_by_its_own_sha256(hostile):
    """Every good file's bytes, and nothing else, in one pack, in manifest order, verifiable by file_hash."""
    layout, batch_id = hostile.layout, "hostile-001"
    (name, pack), *others = packs(layout, batch_id).items()
    assert others == [], "one pack per batch"
    assert name == f"pack-{sha256(pack)[:16]}.bin", "the pack is named by the SHA-256 of its bytes"
    good = [r for r in hostile.rows.values() if r["status"] == "ok"]
    assert len(good) == 9
    end = 0
    for row in good:  # manifest order
        assert row["stored_path"] == f"raw/{batch_id}/{name}"
        assert row["stored_offset"] == end, "objects are appended back to back in manifest order"
        data = stored_object(layout, row)
        assert sha256(data) == row["file_hash"]
        assert data == (hostile.hb.path / row["source_path"].split("/", 1)[1]).read_bytes()
        end += row["file_size"]
    assert end == len(pack), "only good files are stored, each once"
    bad = [r for r in hostile.rows.values() if r["status"] != "ok"]
    assert all(r["stored_path"] is None and r["stored_offset"] is None for r in bad)
    assert sorted(data_files(layout)) == [f"raw/{batch_id}/manifest.parquet", f"raw/{batch_id}/{name}"]


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
    secret_bytes = secret.read_bytes()
    assert all(secret_bytes not in data for data in data_files(hostile.layout).values())
    assert all(r["file_hash"] != sha256(secret_bytes) for r in hostile.rows.values())


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


def test_ingesting_twice_gives_a_byte_identical_manifest_and_pack(landing, layout, hostile_batch):
    first = ingest_batch(hostile_batch.path, layout, landing, SEQUENTIAL)
    files = data_files(layout)
    assert len(packs(layout, "hostile-001")) == 1
    digest = manifest_digest(first.manifest_path, ["source_path", "file_hash", "status"])

    second = ingest_batch(hostile_batch.path, layout, landing, SEQUENTIAL)
    assert second.manifest_path == first.manifest_path
    assert data_files(layout) == files, "same manifest bytes, same pack name and bytes, nothing else"
    assert manifest_digest(second.manifest_path, ["source_path", "file_hash", "status"]) == digest
    assert (second.ok, second.stored_bytes) == (first.ok, first.stored_bytes)
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


def test_reingest_after_a_landed_file_changed_publishes_a_new_pack_and_keeps_the_old_one_ingest_longer(
    landing, layout, image_bytes
):
    """A reader that read the old manifest just before a reingest (clean_images computing features) can still read
    every object it names; the pack before that is removed by the next reingest."""
    batch = landing / "b1"
    (batch / "cat").mkdir(parents=True)
    kept = image_bytes.png(image_bytes.gradient(8, 8))
    old, new, newest = (image_bytes.png(image_bytes.gradient(8, h)) for h in (9, 10, 11))
    (batch / "cat" / "a.png").write_bytes(kept)
    (batch / "cat" / "b.png").write_bytes(old)
    (batch / "cat" / "c.txt").write_bytes(b"not an image")
    first = ingest_batch(batch, layout, landing, SEQUENTIAL)
    (old_name,) = packs(layout, "b1")
    assert packs(layout, "b1")[old_name] == kept + old
    old_rows = rows_by_source(first.manifest_path)

    (batch / "cat" / "b.png").write_bytes(new)
    second = ingest_batch(batch, layout, landing, SEQUENTIAL)
    assert second.manifest_path == first.manifest_path
    assert set(packs(layout, "b1")) == {old_name, f"pack-{sha256(kept + new)[:16]}.bin"}
    new_name = f"pack-{sha256(kept + new)[:16]}.bin"
    assert packs(layout, "b1")[new_name] == kept + new
    rows = rows_by_source(second.manifest_path)
    assert {r["stored_path"] for r in rows.values() if r["status"] == "ok"} == {f"raw/b1/{new_name}"}
    assert rows["b1/cat/c.txt"]["stored_path"] is None
    assert stored_object(layout, rows["b1/cat/a.png"]) == kept
    assert stored_object(layout, rows["b1/cat/b.png"]) == new
    assert rows["b1/cat/b.png"]["file_hash"] == sha256(new)
    assert stored_object(layout, old_rows["b1/cat/b.png"]) == old, "the replaced manifest's objects stay readable"

    (batch / "cat" / "b.png").write_bytes(newest)
    ingest_batch(batch, layout, landing, SEQUENTIAL)
    assert set(packs(layout, "b1")) == {new_name, f"pack-{sha256(kept + newest)[:16]}.bin"}, (
        "the pack two ingests old is removed"
    )
    newest_name = f"pack-{sha256(kept + newest)[:16]}.bin"
    assert set(data_files(layout)) == {"raw/b1/manifest.parquet", f"raw/b1/{new_name}", f"raw/b1/{newest_name}"}


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
    n_files = synthaug.ingest.batch.PARALLEL_MIN_FILES + 40
    write_big_batch(batch, n_files, image_bytes)

    sequential = ingest_batch(batch, DataLayout(tmp_path / "seq"), landing, IngestOptions(workers=1))
    assert sequential.workers.workers == 1
    parallel = ingest_batch(batch, DataLayout(tmp_path / "par"), landing, IngestOptions(workers=2))
    assert parallel.workers.workers == 2, "the parallel path was not taken"

    seq_rows = read_manifest(sequential.manifest_path).to_pylist()
    par_rows = read_manifest(parallel.manifest_path).to_pylist()
    assert len(seq_rows) == n_files
    assert par_rows == seq_rows
    assert parallel.errors == sequential.errors == Counter({"empty_file": 6, "not_an_image": 6})
    assert data_files(DataLayout(tmp_path / "par")) == data_files(DataLayout(tmp_path / "seq")), "same manifest, pack"
    assert len(packs(DataLayout(tmp_path / "par"), "big")) == 1
    for row in par_rows[:: len(par_rows) // 25]:
        if row["status"] == "ok":
            data = stored_object(DataLayout(tmp_path / "par"), row)
            assert data == (batch / row["source_path"].split("/", 1)[1]).read_bytes()


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
    assert (big["status"], big["error_code"], big["width"], big["stored_path"], big["stored_offset"]) == (
        "error",
        "too_many_pixels",
        None,
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


def test_identical_files_under_two_labels_get_two_rows_both_readable(landing, layout, image_bytes):
    batch = landing / "b1"
    png = image_bytes.png(image_bytes.gradient(8, 8))
    for rel in ("cat/a.png", "dog/a.png"):
        (batch / rel).parent.mkdir(parents=True, exist_ok=True)
        (batch / rel).write_bytes(png)
    rows = rows_by_source(ingest_batch(batch, layout, landing, SEQUENTIAL).manifest_path)
    cat, dog = rows["b1/cat/a.png"], rows["b1/dog/a.png"]
    assert cat["file_hash"] == dog["file_hash"] == sha256(png)
    assert cat["pixel_hash"] == dog["pixel_hash"] == xxh3_pixels(image_bytes.gradient(8, 8))
    assert cat["image_id"] != dog["image_id"]
    assert stored_object(layout, cat) == stored_object(layout, dog) == png
    assert cat["stored_path"] == dog["stored_path"]


def test_symlink_inside_the_landing_folder_is_ingested_as_its_target(landing, layout, image_bytes):
    png = image_bytes.png(image_bytes.gradient(8, 8))
    (landing / "shared").mkdir()
    (landing / "shared" / "a.png").write_bytes(png)
    batch = landing / "b1"
    (batch / "cat").mkdir(parents=True)
    os.symlink(landing / "shared" / "a.png", batch / "cat" / "linked.png")
    row = rows_by_source(ingest_batch(batch, layout, landing, SEQUENTIAL).manifest_path)["b1/cat/linked.png"]
    assert (row["status"], row["file_hash"], row["label"]) == ("ok", sha256(png), "cat")
    assert stored_object(layout, row) == png


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
    rows = rows_by_source(summary.manifest_path)
    assert sorted(rows) == ["b1/cat/good.png", "b1/cat/latin1-caf\\xe9.png"]
    odd = rows["b1/cat/latin1-caf\\xe9.png"]
    assert (odd["status"], odd["file_hash"]) == ("ok", sha256(png))
    assert odd["notes"] == "file name is not valid UTF-8: source_path shows the undecodable bytes as \\x escapes"
    assert stored_object(layout, odd) == stored_object(layout, rows["b1/cat/good.png"]) == png


# --- failures leave the previous published state and no temporary files ------------------------------------


def _interrupt_on_second_file(real):
    calls = []

    def decode(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # after the first good file is already in the temporary pack
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    return decode


def _failing_manifest_write(real, name):
    """write_manifest that runs out of disk space after one row group of the manifest called `name`."""

    def write(path, schema, row_chunks):
        if Path(path).name != name:
            return real(path, schema, row_chunks)

        def chunks():
            yield next(iter(row_chunks))  # real rows reach the temporary file first
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        return real(path, schema, chunks())

    return write


@pytest.mark.parametrize("rerun", [False, True], ids=["first-ingest", "rerun"])
@pytest.mark.parametrize("stage", ["decoding", "staged-manifest", "final-manifest"])
def test_a_failed_ingest_leaves_no_temporary_files_and_the_previous_outputs_intact(
    landing, layout, image_bytes, monkeypatch, stage, rerun
):
    batch = landing / "b1"
    (batch / "cat").mkdir(parents=True)
    for i in range(3):
        (batch / "cat" / f"{i}.png").write_bytes(image_bytes.png(image_bytes.gradient(8, 8 + i)))
    if rerun:
        ingest_batch(batch, layout, landing, SEQUENTIAL)
        (batch / "cat" / "1.png").write_bytes(image_bytes.png(image_bytes.gradient(9, 9)))
    before = data_files(layout)

    if stage == "decoding":
        monkeypatch.setattr(
            synthaug.ingest.batch, "apply_outcome", _interrupt_on_second_file(synthaug.ingest.batch.apply_outcome)
        )
        expected, message = KeyboardInterrupt, None
    else:
        name = ".manifest.staged.parquet" if stage == "staged-manifest" else "manifest.parquet"
        monkeypatch.setattr(synthaug.ingest.batch, "write_manifest", _failing_manifest_write(write_manifest, name))
        expected, message = OSError, "disk is full"
    with pytest.raises(expected, match=message):
        ingest_batch(batch, layout, landing, SEQUENTIAL)

    assert temp_leftovers(layout.root) == []
    after = data_files(layout)
    manifest = "raw/b1/manifest.parquet"
    assert after.get(manifest) == before.get(manifest), "the published manifest is untouched"
    assert {k: v for k, v in after.items() if k in before} == before, "nothing published is changed or removed"
    if rerun:
        for row in rows_by_source(layout.raw_manifest("b1")).values():
            assert sha256(stored_object(layout, row)) == row["file_hash"], "the old manifest's pack is still there"
