"""The landing folder: which batches exist, when a batch is complete, and which files and labels it holds."""

from __future__ import annotations

import os
import time

import pytest

from synthaug.ingest.landing import (
    LandedFile,
    PendingBatch,
    batch_fingerprint,
    batch_readiness,
    batch_readiness_from_mtimes,
    invalid_batch_id_reason,
    list_batch_folders,
    scan_batch,
)

QUIET = 30.0


def write(path, data: bytes = b"x", mtime: float | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def by_path(scan) -> dict[str, LandedFile]:
    return {f.rel_path: f for f in scan.files}


# --- which batches exist ----------------------------------------------------------------------------------


def test_list_batch_folders_skips_hidden_underscored_files_and_symlinked_folders(landing, tmp_path):
    for name in ("b-002", "b-001", ".b-003.partial-42", "_archive"):
        (landing / name).mkdir()
    write(landing / "stray.png")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", landing / "linked-batch")
    assert list_batch_folders(landing) == ["b-001", "b-002"]


def test_list_batch_folders_of_a_missing_landing_folder_is_empty(tmp_path):
    assert list_batch_folders(tmp_path / "nope") == []


@pytest.mark.parametrize("name", ["b1", "fmnist-001", "2024.06.01_run", "A" * 128])
def test_valid_batch_ids(name):
    assert invalid_batch_id_reason(name) is None


@pytest.mark.parametrize("name", ["", "-leading-dash", "has space", "ünïcode", "a/b", "A" * 129, "x\ny"])
def test_invalid_batch_ids_say_how_to_fix_them(name):
    reason = invalid_batch_id_reason(name)
    assert reason is not None
    assert repr(name) in reason
    assert "rename the folder" in reason


def test_batch_id_with_a_trailing_newline_is_invalid():
    assert invalid_batch_id_reason("batch-001\n") is not None


# --- when a batch is complete -----------------------------------------------------------------------------


def test_empty_batch_folder_is_not_ready(landing):
    batch = landing / "b1"
    (batch / "cat").mkdir(parents=True)
    ready, reason, state = batch_readiness(batch, None, now=1000.0, quiet_period_s=QUIET)
    assert (ready, state) == (False, None)
    assert reason == "batch b1 is empty; waiting for files"


def test_ready_marker_without_files_is_not_ready(landing):
    batch = landing / "b1"
    write(batch / "_READY", b"")
    ready, reason, _ = batch_readiness(batch, None, now=1000.0, quiet_period_s=QUIET)
    assert not ready
    assert reason == "batch b1 is marked ready but holds no files; waiting for files"


def test_ready_marker_makes_a_batch_ready_at_once(landing):
    batch = landing / "b1"
    write(batch / "cat" / "a.png")
    write(batch / "b.png")
    write(batch / "_READY", b"")
    ready, reason, state = batch_readiness(batch, None, now=time.time(), quiet_period_s=3600)
    assert (ready, state) == (True, None)
    assert reason == "batch b1 has _READY (2 files)"


def test_batch_without_marker_becomes_ready_only_after_the_quiet_period(landing):
    """A batch being written: not ready until its fingerprint has stayed the same for the quiet period."""
    batch = landing / "b1"
    write(batch / "cat" / "a.png", mtime=500.0)

    ready, reason, state = batch_readiness(batch, None, now=1000.0, quiet_period_s=QUIET)
    assert not ready
    assert reason == "batch b1 is still changing (1 files); waiting for it to settle"
    assert state == PendingBatch(batch_fingerprint(batch).digest, 1000.0)

    ready, reason, state2 = batch_readiness(batch, state, now=1000.0 + QUIET - 1, quiet_period_s=QUIET)
    assert not ready
    assert reason == "batch b1 unchanged for 29s of the 30s quiet period"
    assert state2 == state, "an unchanged batch keeps its original start of quiet"

    ready, reason, state3 = batch_readiness(batch, state2, now=1000.0 + QUIET, quiet_period_s=QUIET)
    assert ready
    assert reason == "batch b1 unchanged for 30s (1 files)"
    assert state3 is None


def test_any_change_to_a_batch_restarts_the_quiet_period(landing):
    batch = landing / "b1"
    first = write(batch / "cat" / "a.png", b"part", mtime=500.0)
    _, _, state = batch_readiness(batch, None, now=1000.0, quiet_period_s=QUIET)

    write(batch / "cat" / "b.png", mtime=500.0)  # a new file
    ready, reason, state = batch_readiness(batch, state, now=1025.0, quiet_period_s=QUIET)
    assert not ready
    assert reason == "batch b1 is still changing (2 files); waiting for it to settle"
    assert state.unchanged_since == 1025.0

    with open(first, "ab") as fh:  # a file still growing
        fh.write(b"more")
    os.utime(first, (500.0, 500.0))
    ready, _, state = batch_readiness(batch, state, now=1050.0, quiet_period_s=QUIET)
    assert not ready and state.unchanged_since == 1050.0

    ready, _, _ = batch_readiness(batch, state, now=1050.0 + QUIET, quiet_period_s=QUIET)
    assert ready


def test_fingerprint_sees_size_mtime_and_renames_and_counts_only_files(landing):
    batch = landing / "b1"
    path = write(batch / "cat" / "a.png", b"abc", mtime=500.0)
    write(batch / "_READY", b"")
    fp = batch_fingerprint(batch)
    assert fp.files == 1, "the marker and the class folder are not files"
    assert batch_fingerprint(batch) == fp

    os.utime(path, (501.0, 501.0))
    touched = batch_fingerprint(batch)
    assert touched.digest != fp.digest and touched.newest_mtime >= 501.0

    path.rename(batch / "cat" / "b.png")
    os.utime(batch / "cat" / "b.png", (501.0, 501.0))
    assert batch_fingerprint(batch).digest != touched.digest


def test_readiness_from_mtimes_uses_the_newest_change_as_start_of_quiet(landing):
    """The CLI has no memory between calls: a batch settles once nothing changed for the quiet period."""
    batch = landing / "b1"
    write(batch / "cat" / "a.png")
    later = time.time() + 600
    assert batch_readiness_from_mtimes(batch, later, quiet_period_s=60)[0]

    write(batch / "cat" / "b.png")
    ready, reason = batch_readiness_from_mtimes(batch, time.time() + 5, quiet_period_s=60)
    assert not ready
    assert "of the 60s quiet period" in reason


def test_copy_that_preserves_old_mtimes_is_not_mistaken_for_settled(landing):
    """`cp -p` / `rsync -a` keep old mtimes; the change time still shows the batch is being written."""
    batch = landing / "b1"
    write(batch / "cat" / "a.png", mtime=time.time() - 86400)
    os.utime(batch / "cat", (time.time() - 86400, time.time() - 86400))
    ready, _ = batch_readiness_from_mtimes(batch, time.time(), quiet_period_s=60)
    assert not ready


# --- which files and labels a batch holds -----------------------------------------------------------------


def test_labels_come_from_the_first_folder_and_files_at_the_top_are_unlabeled(landing):
    batch = landing / "b1"
    write(batch / "cat" / "a.png")
    write(batch / "cat" / "indoor" / "b.png")
    write(batch / "dog" / "c.png")
    write(batch / "loose.png")
    write(batch / "_READY", b"")
    scan = scan_batch(batch, landing)
    assert scan.batch_id == "b1"
    assert scan.warnings == []
    assert by_path(scan) == {
        "cat/a.png": LandedFile("cat/a.png", "cat", "folder"),
        "cat/indoor/b.png": LandedFile("cat/indoor/b.png", "cat", "folder"),
        "dog/c.png": LandedFile("dog/c.png", "dog", "folder"),
        "loose.png": LandedFile("loose.png", None, None),
    }


def test_scan_order_is_deterministic(landing):
    batch = landing / "b1"
    for rel in ("z.png", "b/2.png", "a/1.png", "b/1.png", "a.png"):
        write(batch / rel)
    first = [f.rel_path for f in scan_batch(batch, landing).files]
    assert sorted(first) == ["a.png", "a/1.png", "b/1.png", "b/2.png", "z.png"]
    assert [f.rel_path for f in scan_batch(batch, landing).files] == first


def test_labels_csv_overrides_folder_labels_and_labels_unlabeled_files(landing):
    batch = landing / "b1"
    write(batch / "cat" / "a.png")
    write(batch / "cat" / "b.png")
    write(batch / "loose.png")
    (batch / "labels.csv").write_text("file,label\ncat/a.png,tiger\n./loose.png, dog \n", encoding="utf-8")
    scan = scan_batch(batch, landing)
    assert scan.warnings == []
    assert by_path(scan) == {
        "cat/a.png": LandedFile("cat/a.png", "tiger", "labels.csv"),
        "cat/b.png": LandedFile("cat/b.png", "cat", "folder"),
        "loose.png": LandedFile("loose.png", "dog", "labels.csv"),
    }


def test_unsafe_or_malformed_labels_csv_entries_are_skipped_with_warnings(landing):
    batch = landing / "b1"
    write(batch / "cat" / "a.png")
    write(batch / "cat" / "b.png")
    lines = [
        "file,label",
        "../x.png,escape",  # 2: leaves the batch
        "/etc/passwd,absolute",  # 3: absolute path
        "cat/a\x07.png,bell",  # 4: control character in the file name
        "cat/a.png,bad\x01label",  # 5: control character in the label
        "cat/b.png,   ",  # 6: blank label
        "only-one-column",  # 7: malformed
        "cat/sub/../../../y.png,sneaky",  # 8: '..' hidden inside the path
        "missing.png,ghost",  # 9: names no file
        "cat/b.png,lion",  # 10: fine
    ]
    (batch / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    scan = scan_batch(batch, landing)
    assert by_path(scan) == {
        "cat/a.png": LandedFile("cat/a.png", "cat", "folder"),
        "cat/b.png": LandedFile("cat/b.png", "lion", "labels.csv"),
    }
    assert scan.warnings == [
        "labels.csv line 2: file '../x.png' is not a plain path inside the batch; skipped",
        "labels.csv line 3: file '/etc/passwd' is not a plain path inside the batch; skipped",
        "labels.csv line 4: file 'cat/a\\x07.png' is not a plain path inside the batch; skipped",
        "labels.csv line 5: label 'bad\\x01label' contains control characters; skipped",
        "labels.csv line 6: label is blank; skipped",
        "labels.csv line 7: expected 'file,label'; skipped",
        "labels.csv line 8: file 'cat/sub/../../../y.png' is not a plain path inside the batch; skipped",
        "labels.csv: 'missing.png' names no file in the batch; entry ignored",
    ]


def test_labels_csv_that_is_a_symlink_is_ignored(landing, tmp_path):
    batch = landing / "b1"
    write(batch / "cat" / "a.png")
    outside = tmp_path / "labels.csv"
    outside.write_text("cat/a.png,tiger\n")
    os.symlink(outside, batch / "labels.csv")
    scan = scan_batch(batch, landing)
    assert by_path(scan) == {"cat/a.png": LandedFile("cat/a.png", "cat", "folder")}
    assert scan.warnings == ["labels.csv is a symlink; ignored (copy the file into the batch instead)"]


def test_folder_label_with_control_characters_is_dropped_with_a_warning(landing):
    batch = landing / "b1"
    write(batch / "bad\x01name" / "a.png")
    scan = scan_batch(batch, landing)
    assert by_path(scan) == {"bad\x01name/a.png": LandedFile("bad\x01name/a.png", None, None)}
    assert scan.warnings == [
        "bad\\x01name/a.png: folder label ignored: label 'bad\\x01name' contains control characters"
    ]


def test_names_with_spaces_and_non_ascii_characters_are_listed_as_they_are(landing):
    batch = landing / "b1"
    write(batch / "chat noir ü" / "photo été 猫 01.png")
    scan = scan_batch(batch, landing)
    assert scan.files == [LandedFile("chat noir ü/photo été 猫 01.png", "chat noir ü", "folder")]


def test_symlink_leaving_the_landing_folder_is_refused(landing, tmp_path):
    batch = landing / "b1"
    secret = write(tmp_path / "secret" / "passwd.png")
    batch.mkdir()
    os.symlink(secret, batch / "escape.png")
    os.symlink("../../secret/passwd.png", batch / "relative-escape.png")
    files = by_path(scan_batch(batch, landing))
    for rel in ("escape.png", "relative-escape.png"):
        assert files[rel].refused == (
            f"symlink points outside the landing folder (to {secret}); copy the file into the batch instead"
        )


def test_symlinks_that_stay_inside_the_landing_folder_are_followed_only_to_regular_files(landing):
    batch = landing / "b1"
    target = write(landing / "b0" / "cat" / "a.png")
    write(batch / "cat" / "b.png")
    os.symlink(target, batch / "cat" / "from-b0.png")
    os.symlink("b.png", batch / "cat" / "alias.png")
    os.symlink("nowhere.png", batch / "cat" / "dangling.png")
    os.symlink(landing / "b0" / "cat", batch / "cat" / "folder-link")
    files = by_path(scan_batch(batch, landing))
    assert files["cat/from-b0.png"].refused is None
    assert files["cat/alias.png"].refused is None
    assert files["cat/dangling.png"].refused == f"symlink target {batch / 'cat' / 'nowhere.png'} is not a regular file"
    assert files["cat/folder-link"].refused == f"symlink target {landing / 'b0' / 'cat'} is not a regular file"
    assert "cat/folder-link/a.png" not in files, "symlinked folders are never walked into"


def test_fifo_in_a_batch_is_refused_without_blocking(landing, deadline):
    batch = landing / "b1"
    write(batch / "cat" / "a.png")
    os.mkfifo(batch / "cat" / "pipe.png")
    deadline(20)
    files = by_path(scan_batch(batch, landing))
    assert files["cat/pipe.png"] == LandedFile(
        "cat/pipe.png", "cat", "folder", refused="not a regular file (device, socket or pipe)"
    )
    assert files["cat/a.png"].refused is None
