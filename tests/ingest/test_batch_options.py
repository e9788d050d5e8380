"""ingest_batch options and edge cases: empty batches, pixel and byte limits, labels.csv, identical files under
two labels, symlinks inside the landing folder, progress, and file names that are not UTF-8."""

from __future__ import annotations

import os
from collections import Counter

import pyarrow.parquet as pq

from synthaug.ingest.batch import RAW_MANIFEST_SCHEMA, IngestOptions, ingest_batch
from synthaug.ingest.landing import batch_readiness
from tests.ingest.helpers import (
    SEQUENTIAL,
    rows_by_source,
    sha256,
    stored_object,
    xxh3_pixels,
)


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
