"""Per-file isolation (issue 18): whatever a file's bytes do inside a decoder (hang, allocate without bound,
crash the process, raise anything), that file gets its own error row and the rest of the batch is ingested."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from synthaug.core.layout import DataLayout
from synthaug.ingest.batch import IngestOptions, ingest_batch
from tests.reliability.hostile_decoders import HANG, HOG, ODD, SEGFAULT

DECODER = "tests.reliability.hostile_decoders:misbehaving_decode"


def _good_png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 16), dtype=np.uint8)
    return cv2.imencode(".png", pixels)[1].tobytes()


def _batch(landing: Path, triggers: dict[str, bytes], good: int = 6) -> Path:
    """A batch of `good` valid PNGs with the trigger files placed between them (class folder `cat`)."""
    folder = landing / "b1" / "cat"
    folder.mkdir(parents=True)
    for i in range(good):
        (folder / f"good{i}.png").write_bytes(_good_png(i))
    for name, trigger in triggers.items():
        (folder / name).write_bytes(trigger + _good_png(99))
    return folder.parent


def _rows(manifest: Path) -> dict[str, dict]:
    return {Path(r["source_path"]).name: r for r in pq.read_table(manifest).to_pylist()}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_hanging_an_exhausting_and_a_crashing_file_each_get_their_own_row(landing, data_root, workers):
    triggers = {"hang.png": HANG, "hog.png": HOG, "segv.png": SEGFAULT, "odd.png": ODD}
    batch = _batch(landing, triggers)
    options = IngestOptions(workers=workers, decode_timeout_s=1.0, decode_memory_mb=512, decoder=DECODER)
    start = time.monotonic()
    summary = ingest_batch(batch, DataLayout(data_root), landing, options)
    took = time.monotonic() - start

    rows = _rows(summary.manifest_path)
    assert len(rows) == 10 and summary.ok == 6
    assert all(rows[f"good{i}.png"]["status"] == "ok" for i in range(6))
    hang, hog, segv, odd = (rows[n] for n in triggers)
    assert (hang["status"], hang["error_code"]) == ("error", "decode_timeout")
    assert "longer than 1 s" in hang["error"] and "decode_timeout_s" in hang["error"]
    assert (hog["error_code"], hog["error_type"]) == ("decode_memory", "MemoryError")
    assert "decode_memory_mb" in hog["error"]
    assert (segv["error_code"], segv["error_type"]) == ("decode_crash", "SIGSEGV")
    assert (odd["error_code"], odd["error_type"]) == ("decoder_error", "TypeError")
    assert "Missing dimensions" in odd["error"]
    assert all(r["stored_offset"] is None for r in (hang, hog, segv, odd))
    assert summary.workers.failures == {"timeout": 1, "memory": 1, "crash": 1}  # an exception is a plain result
    assert summary.workers.replaced >= 2  # a worker that hit its memory ceiling is replaced after its unit
    assert took < 20, f"one hanging file must cost about its time limit, not more ({took:.1f} s)"


def test_the_rows_of_a_batch_with_failures_equal_those_without_them(landing, data_root, tmp_path):
    """Files around a crashing one are decoded again on the fresh worker and give the same rows as usual."""
    batch = _batch(landing, {"m_segv.png": SEGFAULT}, good=40)
    crashed = ingest_batch(batch, DataLayout(data_root), landing, IngestOptions(workers=1, decoder=DECODER))
    (batch / "cat" / "m_segv.png").unlink()
    clean = ingest_batch(batch, DataLayout(tmp_path / "clean"), landing, IngestOptions(workers=1))
    with_crash, without = _rows(crashed.manifest_path), _rows(clean.manifest_path)
    assert with_crash.pop("m_segv.png")["error_code"] == "decode_crash"
    assert with_crash == without
