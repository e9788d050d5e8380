"""Atomic output (readers see the old file or the new one, never half of one) and exclusive locks between runs."""

from __future__ import annotations

import errno
import multiprocessing
import os
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pytest

from synthaug.core.atomic import StorageError, atomic_output, atomic_write_bytes
from synthaug.core.locking import LockTimeout, exclusive_lock
from synthaug.core.manifest import read_manifest, write_manifest
from synthaug.ingest.batch import RAW_MANIFEST_SCHEMA


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


# --- atomic output ----------------------------------------------------------------------------------------


def test_atomic_write_creates_missing_folders_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "a" / "b" / "out.bin"
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert leftovers(target.parent) == []


def test_temp_file_is_a_hidden_sibling_renamed_over_the_target(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_output(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".out.txt.tmp-")
        tmp.write_text("new")
        assert target.read_text() == "old", "readers see the old file until the block succeeds"
    assert target.read_text() == "new"
    assert leftovers(tmp_path) == []


def test_failure_inside_the_block_keeps_the_old_file_and_removes_the_temp_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_output(target) as tmp:
        tmp.write_text("half-writ")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []


def test_failed_first_write_leaves_no_file_at_all(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as tmp:
        tmp.write_text("partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_disk_full_on_rename_becomes_a_storage_error_naming_the_path(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(StorageError) as info:
        atomic_write_bytes(target, b"new")
    err = info.value
    assert isinstance(err, OSError) and err.errno == errno.ENOSPC
    assert err.filename == str(target)
    assert str(target) in str(err)
    assert "disk is full" in str(err) and "free space" in str(err)
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_quota_error_while_writing_is_wrapped_too(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(StorageError, match="disk quota is exhausted") as info, atomic_output(target):
        raise OSError(errno.EDQUOT, "Disk quota exceeded")
    assert str(target) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_parent_is_a_storage_error_naming_the_folder(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(StorageError) as info:
        atomic_write_bytes(blocker / "sub" / "out.bin", b"x")
    assert str(blocker / "sub") in str(info.value)


def test_the_next_write_removes_temporaries_of_killed_writers_but_not_of_live_ones(tmp_path):
    target = tmp_path / "manifest.parquet"
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer exists: the writer was killed mid-write
    orphan = tmp_path / f".manifest.parquet.tmp-{dead.pid}-0badc0de"
    live = tmp_path / f".manifest.parquet.tmp-{os.getppid()}-c0ffee00"  # another writer still at work
    other = tmp_path / f".other.parquet.tmp-{dead.pid}-0badc0de"  # another file's temporary: not ours to judge
    for path in (orphan, live, other):
        path.write_bytes(b"half")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert leftovers(tmp_path) == sorted([live.name, other.name])


def test_manifest_write_failure_keeps_the_previous_manifest(tmp_path):
    """A crash while streaming rows leaves the previous manifest readable, not a truncated Parquet file."""
    path = tmp_path / "manifest.parquet"
    row = {name: None for name in RAW_MANIFEST_SCHEMA.names} | {"image_id": "a", "status": "ok"}
    assert write_manifest(path, RAW_MANIFEST_SCHEMA, [[row]]) == 1

    def chunks():
        yield [row | {"image_id": "b"}]
        raise RuntimeError("worker died")

    with pytest.raises(RuntimeError, match="worker died"):
        write_manifest(path, RAW_MANIFEST_SCHEMA, chunks())
    assert read_manifest(path, columns=["image_id"]).column("image_id").to_pylist() == ["a"]
    assert leftovers(tmp_path) == []


def test_manifest_rows_that_do_not_fit_the_schema_fail_loudly(tmp_path):
    path = tmp_path / "manifest.parquet"
    bad = {name: None for name in RAW_MANIFEST_SCHEMA.names} | {"width": "wide"}
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        write_manifest(path, RAW_MANIFEST_SCHEMA, [[bad]])
    assert not path.exists()


# --- exclusive locks --------------------------------------------------------------------------------------


def hold_lock(path: str, held, release) -> None:
    with exclusive_lock(Path(path), timeout_s=5):
        held.set()
        release.wait(30)


@pytest.fixture
def other_process_holding(tmp_path):
    """Start a second process that takes the lock and holds it until told to let go."""
    ctx = multiprocessing.get_context("fork")
    started = []

    def start(lock_path: Path):
        held, release = ctx.Event(), ctx.Event()
        proc = ctx.Process(target=hold_lock, args=(str(lock_path), held, release), daemon=True)
        proc.start()
        assert held.wait(10), "the other process never got the lock"
        started.append((proc, release))
        return proc, release

    yield start
    for proc, release in started:
        if not proc.is_alive():
            continue  # never signal an Event a killed process was waiting on: notify_all would wait for it forever
        release.set()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()


def test_lock_held_by_another_process_times_out_naming_the_lock(tmp_path, other_process_holding):
    lock = tmp_path / ".locks" / "raw_images-b1.lock"
    other_process_holding(lock)
    start = time.monotonic()
    with pytest.raises(LockTimeout) as info, exclusive_lock(lock, timeout_s=0.5, what="raw_images for batch b1"):
        pytest.fail("got a lock another process holds")
    waited = time.monotonic() - start
    assert 0.5 <= waited < 3
    message = str(info.value)
    assert str(lock) in message
    assert message.startswith("raw_images for batch b1 is being written by another run")


@pytest.mark.parametrize("how", ["released", "killed"])
def test_lock_is_acquired_once_the_other_process_lets_go_or_dies(tmp_path, other_process_holding, how):
    """Released or killed with -9, the other process never leaves a stale lock behind."""
    lock = tmp_path / "out.lock"
    proc, release = other_process_holding(lock)
    release.set() if how == "released" else proc.kill()
    proc.join(10)
    with exclusive_lock(lock, timeout_s=5):
        pass


def test_waiting_lock_is_acquired_when_released_during_the_wait(tmp_path, other_process_holding):
    lock = tmp_path / "out.lock"
    proc, release = other_process_holding(lock)
    ctx = multiprocessing.get_context("fork")
    releaser = ctx.Process(target=_release_after, args=(release, 0.5))
    releaser.start()
    start = time.monotonic()
    with exclusive_lock(lock, timeout_s=10):
        waited = time.monotonic() - start
    releaser.join(10)
    assert 0.3 <= waited < 5


def _release_after(release, delay: float) -> None:
    time.sleep(delay)
    release.set()


def test_lock_is_released_after_the_block_even_on_error(tmp_path):
    lock = tmp_path / "out.lock"
    with pytest.raises(RuntimeError), exclusive_lock(lock, timeout_s=0):
        raise RuntimeError("failed run")
    with exclusive_lock(lock, timeout_s=0):
        pass
