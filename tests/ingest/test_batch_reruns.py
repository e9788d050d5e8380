"""ingest_batch run again: the same batch gives byte-identical outputs, a changed file a new pack (the old one kept
one ingest longer for readers), workers give the rows one worker gives, and a failed ingest leaves the previous
published state and no temporary file."""

from __future__ import annotations

import errno
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import synthaug.ingest.batch
from synthaug.core.layout import DataLayout
from synthaug.core.manifest import read_manifest, write_manifest
from synthaug.ingest.batch import IngestOptions, ingest_batch
from synthaug.ingest.samples import manifest_digest
from tests.ingest.helpers import SEQUENTIAL, data_files, packs, rows_by_source, sha256, stored_object, temp_leftovers


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
