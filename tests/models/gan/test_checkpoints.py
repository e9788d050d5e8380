"""Checkpoints: round trip, version keys, detection of truncated or corrupted files, fallback, pruning."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from synthaug.models.gan import checkpoints as ck


def _state(value: float) -> dict:
    return {"weights": torch.full((3, 3), value), "history": [{"step": 1.0, "loss": value}], "rng": torch.ones(4)}


def test_round_trip_keeps_tensors_and_metadata(tmp_path):
    path = ck.save_checkpoint(tmp_path, "v1", 5, _state(1.5))
    loaded = ck.load_latest(tmp_path, "v1")
    assert loaded.path == path and loaded.step == 5 and loaded.version == "v1"
    assert torch.equal(loaded.state["weights"], torch.full((3, 3), 1.5))
    assert loaded.state["history"] == [{"step": 1.0, "loss": 1.5}]
    assert ck.load_file(path).step == 5
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "no temporary file left behind"


def test_version_key_depends_on_data_and_config_not_key_order():
    a = ck.version_key("data-1", {"lr": 1e-4, "width": 32})
    assert a == ck.version_key("data-1", {"width": 32, "lr": 1e-4})
    assert a != ck.version_key("data-2", {"lr": 1e-4, "width": 32})
    assert a != ck.version_key("data-1", {"lr": 2e-4, "width": 32})


def test_truncated_newest_file_falls_back_to_the_previous_good_one(tmp_path):
    ck.save_checkpoint(tmp_path, "v", 10, _state(1.0))
    newest = ck.save_checkpoint(tmp_path, "v", 20, _state(2.0))
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])
    loaded = ck.load_latest(tmp_path, "v")
    assert loaded.step == 10
    assert loaded.skipped[0][0] == newest and "truncated" in loaded.skipped[0][1]
    with pytest.raises(ck.CheckpointError, match=str(newest.name)):
        ck.load_file(newest)


def test_flipped_byte_is_caught_by_the_checksum(tmp_path):
    ck.save_checkpoint(tmp_path, "v", 1, _state(1.0))
    path = ck.save_checkpoint(tmp_path, "v", 2, _state(2.0))
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    loaded = ck.load_latest(tmp_path, "v")
    assert loaded.step == 1 and "SHA-256" in loaded.skipped[0][1]


def test_no_valid_checkpoint_gives_none(tmp_path):
    assert ck.load_latest(tmp_path, "v") is None
    path = ck.checkpoint_path(tmp_path, "v", 3)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    assert ck.load_latest(tmp_path, "v") is None


def test_only_the_newest_n_are_kept_per_version(tmp_path):
    for step in range(1, 6):
        ck.save_checkpoint(tmp_path, "v", step, _state(step), keep=2)
    ck.save_checkpoint(tmp_path, "w", 1, _state(0.0), keep=2)
    assert [p.name for p in ck.list_checkpoints(tmp_path, "v")] == ["ckpt-000000004.pt", "ckpt-000000005.pt"]
    assert ck.latest_version(tmp_path) == "w"


def test_a_half_written_file_of_a_killed_writer_is_removed_by_the_next_save(tmp_path):
    first = ck.save_checkpoint(tmp_path, "v", 1, _state(1.0))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = first.parent / f".ckpt-000000002.pt.tmp-{int(dead.stdout)}-0123abcd"
    orphan.write_bytes(b"half a checkpoint")
    live = first.parent / f".ckpt-000000002.pt.tmp-{os.getpid()}-4567cdef"
    live.write_bytes(b"being written right now")
    assert ck.load_latest(tmp_path, "v").step == 1  # never read
    ck.save_checkpoint(tmp_path, "v", 3, _state(3.0))
    assert not orphan.exists() and live.exists()
