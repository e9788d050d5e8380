"""Hostile landed batches (issue 8, part 4) against the real ingest: every bad file gets a clear per-file
reason, nothing outside the landing folder is read into the outputs, nothing outside the data root is
written, the landing files stay as they were, and decompression bombs are refused before they allocate.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey

from assets.partitions import BATCHES
from assets.raw_images import raw_images
from synthaug.core.layout import DataLayout
from synthaug.ingest.batch import IngestOptions, IngestSummary, ingest_batch
from tests.reliability.hostile_batch import Hostile, grey_png, materialize_batch, zeros_png

MAX_INGEST_RSS = 1 << 30
_opened: list[str] | None = None


def _record_opens(event: str, args: tuple) -> None:
    """Audit hook: while a test records, remember the absolute path of every file the process opens."""
    if _opened is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        _opened.append(os.path.abspath(os.fsdecode(args[0])))


sys.addaudithook(_record_opens)


def _snapshot(root: Path, skip: Path) -> dict[str, tuple]:
    """Every entry under `root` except `skip`: content hash, mode and mtime of files; targets of links."""
    state: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if Path(folder, d) != skip]
        for name in dirs + files:
            path = Path(folder, name)
            st = path.lstat()
            if path.is_symlink():
                state[str(path)] = ("link", os.readlink(path))
            elif path.is_dir():
                state[str(path)] = ("dir", st.st_mode)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                state[str(path)] = ("file", digest, st.st_mode, st.st_mtime_ns, st.st_nlink)
    return state


def _rows(manifest: Path) -> dict[str, dict]:
    return {row["source_path"]: row for row in pq.read_table(manifest).to_pylist()}


def _output_bytes(data_root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_root.rglob("*")) if p.is_file())


def _assert_rows_match(rows: dict[str, dict], expected: dict[str, tuple[str, str | None, str]]) -> None:
    assert sorted(rows) == sorted(expected)
    for source, (status, code, fragment) in expected.items():
        row = rows[source]
        assert (row["status"], row["error_code"]) == (status, code), source
        said = row["error"] if status == "error" else (row["notes"] or "")
        assert fragment in said, f"{source}: {said!r} does not mention {fragment!r}"
        assert "\n" not in row["source_path"] and "\x1b" not in row["source_path"]


def _ingest_recording_opens(h: Hostile) -> tuple[IngestSummary, list[str]]:
    global _opened
    _opened = []
    try:
        summary = ingest_batch(h.batch, DataLayout(h.data_root), h.landing, IngestOptions(workers=1))
        return summary, _opened
    finally:
        _opened = None


def test_every_hostile_file_gets_a_row_with_a_clear_reason(hostile):
    summary, _ = _ingest_recording_opens(hostile)
    _assert_rows_match(_rows(summary.manifest_path), hostile.expected)
    assert summary.ok == 5 and sum(summary.errors.values()) == 8


def test_labels_csv_cannot_reach_outside_the_batch_or_smuggle_control_characters(hostile):
    summary, _ = _ingest_recording_opens(hostile)
    rows = _rows(summary.manifest_path)
    warnings = "\n".join(summary.warnings)
    for line, name in [(2, "../outside.png"), (3, "../../secret/secret.png"), (4, "/etc/passwd")]:
        assert f"labels.csv line {line}: file {name!r} is not a plain path inside the batch; skipped" in warnings
    assert "labels.csv line 5: file 'cat/new\\nline.png' is not a plain path" in warnings
    assert "labels.csv line 6: label 'bell\\x07label' contains control characters; skipped" in warnings
    assert "stolen" not in {r["label"] for r in rows.values()}
    assert rows["evil/cat/good.png"]["label"] == "cat"
    assert rows["evil/-rf/img.png"]["label"] == "--version"
    assert rows["evil/--help/img.png"]["label"] == "--help"


def test_no_file_outside_the_landing_folder_is_opened_copied_or_changed(hostile):
    before = _snapshot(hostile.root, skip=hostile.data_root)
    _, opened = _ingest_recording_opens(hostile)
    assert _snapshot(hostile.root, skip=hostile.data_root) == before
    allowed = (str(hostile.batch) + os.sep, str(hostile.data_root) + os.sep)
    assert opened, "the audit hook saw no file opened: it is not recording"
    assert [p for p in opened if p.startswith(str(hostile.root)) and not p.startswith(allowed)] == []
    outputs = _output_bytes(hostile.data_root)
    for secret in hostile.secrets:
        assert secret.read_bytes() not in outputs, f"bytes of {secret} were copied into the data root"


def test_hostile_batch_through_the_raw_images_asset(hostile, instance):
    before = _snapshot(hostile.root, skip=hostile.data_root)
    instance.add_dynamic_partitions(BATCHES, ["evil"])
    result = materialize_batch(raw_images, instance, hostile)
    assert result.success
    _assert_rows_match(_rows(hostile.data_root / "raw" / "evil" / "manifest.parquet"), hostile.expected)
    event = instance.get_latest_materialization_event(AssetKey("raw_images"))
    metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    assert metadata["errors_by_reason"] == {
        "refused": 3,
        "too_many_pixels": 2,
        "empty_file": 1,
        "corrupt_data": 1,
        "unreadable": 1,
    }
    assert "hardlink_out.png" in metadata["bad_files"] and "../outside.png" in metadata["warnings"]
    assert "\x1b" not in metadata["bad_files"] + metadata["warnings"]
    assert _snapshot(hostile.root, skip=hostile.data_root) == before
    outputs = _output_bytes(hostile.data_root)
    assert all(secret.read_bytes() not in outputs for secret in hostile.secrets)


_MEASURE_INGEST = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from synthaug.ingest.batch import IngestOptions, ingest_batch
    from synthaug.core.layout import DataLayout
    batch, landing, data_root = map(Path, sys.argv[1:4])
    summary = ingest_batch(batch, DataLayout(data_root), landing, IngestOptions(workers=1))
    status = Path("/proc/self/status").read_text().splitlines()
    parent = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) * 1024
    peak = max(parent, summary.workers.worker_peak_rss)
    print(json.dumps({"peak_rss": peak, "ok": summary.ok, "errors": dict(summary.errors)}))
    """
)


def _peak_rss_of_ingest(batch: Path, landing: Path, data_root: Path) -> dict:
    """Ingest in a fresh interpreter and report the peak resident memory (bytes) of it or its largest decode
    worker, whichever is higher, and the counts.

    The peak is the interpreter's own VmHWM: `ru_maxrss` would start from the forking pytest process's peak (Linux
    carries it across fork and exec), which after the rest of the suite is over a GiB by itself."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE_INGEST, str(batch), str(landing), str(data_root)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("name", "make", "code"),
    [
        ("header_50k.png", lambda: grey_png(50_000, 50_000, zlib.compress(bytes(64))), "too_many_pixels"),
        ("bomb_20k.png", lambda: zeros_png(20_000, 20_000), "too_many_pixels"),
        ("bomb_9k_under_limit.png", lambda: zeros_png(9_000, 9_000), None),
    ],
)
def test_decompression_bombs_are_refused_before_allocating(
    landing: Path, data_root: Path, name: str, make: Callable[[], bytes], code: str | None
):
    """A 2.5 G or 400 M pixel header is refused unread; 81 M pixels (under the limit) decode within bounds."""
    batch = landing / "bombs" / "cat"
    batch.mkdir(parents=True)
    (batch / name).write_bytes(make())
    measured = _peak_rss_of_ingest(batch.parent, landing, data_root)
    print(f"{name}: peak RSS {measured['peak_rss'] / 2**20:.0f} MiB")
    assert measured["errors"] == ({code: 1} if code else {})
    assert measured["ok"] == (0 if code else 1)
    assert measured["peak_rss"] < MAX_INGEST_RSS


def test_ten_thousand_files_half_corrupt_each_get_their_own_row(landing: Path, data_root: Path):
    """5,000 good tiny PNGs and 5,000 broken files in one batch: every file accounted for, in parallel."""
    rng = np.random.default_rng(7)
    good = [cv2.imencode(".png", rng.integers(0, 256, (s, s), dtype=np.uint8))[1].tobytes() for s in (8, 28)]
    corrupt = [rng.bytes(200), good[1][: len(good[1]) // 2], b"", b"\x89PNG\r\n\x1a\n" + rng.bytes(64)]
    codes = ["not_an_image", "corrupt_data", "empty_file", "unreadable"]
    batch = landing / "big"
    for c in range(10):
        (batch / f"class{c}").mkdir(parents=True)
    for i in range(10_000):
        folder = batch / f"class{i % 10}"
        if i % 2:
            (folder / f"bad{i:05d}.png").write_bytes(corrupt[(i // 2) % 4])
        else:
            (folder / f"good{i:05d}.png").write_bytes(good[(i // 2) % 2])
    start = time.monotonic()
    summary = ingest_batch(batch, DataLayout(data_root), landing, IngestOptions(workers=2))
    print(f"10,000 files ingested in {time.monotonic() - start:.1f}s")
    rows = pq.read_table(summary.manifest_path).to_pylist()
    assert len(rows) == 10_000 and len({r["image_id"] for r in rows}) == 10_000
    bad = [r for r in rows if "/bad" in r["source_path"]]
    assert all(r["status"] == "ok" for r in rows if "/good" in r["source_path"])
    assert all(r["status"] == "error" and r["error"] for r in bad)
    assert Counter(r["error_code"] for r in bad) == Counter({code: 1250 for code in codes})
    assert (summary.ok, summary.errors) == (5_000, Counter({code: 1250 for code in codes}))
