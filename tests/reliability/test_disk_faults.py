"""Disk full and read-only data root (issue 8, part 5) against the real assets on a real instance.

Mechanism: the data root is a REAL small tmpfs mounted for each test (the tests run as root in a
container). "Disk full" fills it with a filler file, so writes fail with the kernel's own ENOSPC, either
at the first byte (`full`) or part-way through a stage's outputs (`partial`: a few pages left free);
or exactly at the tensors pointer; "read-only" remounts it with `mount -o remount,ro`, or bind-mounts one
stage folder read-only (root ignores chmod), so writes fail with EROFS. Where mounting is not permitted
the tests are skipped with the reason.

After each fault: the run fails with a Dagster Failure whose message names a path under the data root,
says what happened and what to do; every file under the data root (hidden temporaries included) is as
it was before the run, so earlier batches and the previous version stay intact and nothing half-written
is visible; the landing folder is untouched; and once space is freed (or the mount is writable again)
the same materialization succeeds with outputs byte-identical to a data root that never saw a fault.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from dagster import DagsterInstance

from assets.partitions import BATCHES
from synthaug.core.atomic import StorageError
from synthaug.models.gan.checkpoints import list_checkpoints, load_latest, save_checkpoint
from tests.pipelines.cheap_runs import cheap_ops, run_cheap

STAGES = ["raw_images", "clean_images", "training_tensors"]
RUN_CONFIG = {"ops": cheap_ops(copies=1, shard_size=4)}
TMPFS_SIZE = "4m"
PAGE = 4096
PARTIAL_HEADROOM = {"raw_images": 8 << 10, "clean_images": 12 << 10, "training_tensors": 24 << 10}
FULL_ADVICE = ("disk is full", "free space")
READ_ONLY_ADVICE = ("read-only", "writable folder")


class Disk:
    """A small tmpfs mounted over a folder: fill it, free it, make it read-only and writable again."""

    def __init__(self, mount_point: Path) -> None:
        self.mount_point = mount_point
        self.filler = mount_point / "filler.bin"

    def fill(self, headroom: int = 0) -> None:
        """Write a filler file until the kernel says ENOSPC, then give back `headroom` bytes."""
        chunk = b"\0" * (64 << 10)
        with open(self.filler, "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
            for size in (4096, 1):
                try:
                    while True:
                        fh.write(chunk[:size])
                except OSError:
                    pass
        if headroom:
            size = self.filler.stat().st_size
            self.filler.write_bytes(b"") if size <= headroom else _truncate(self.filler, size - headroom)

    def free(self) -> None:
        """Delete the filler file."""
        self.filler.unlink()

    def remount(self, mode: str) -> None:
        """`ro` or `rw`."""
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.mount_point)], check=True)


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(size)


@pytest.fixture
def disk(data_root: Path) -> Iterator[Disk]:
    """Mount a real tmpfs of TMPFS_SIZE over the data root; always unmounted afterwards."""
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0755", "tmpfs", str(data_root)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield Disk(data_root)
    finally:
        subprocess.run(["umount", str(data_root)], check=False)
        if data_root.is_mount():
            subprocess.run(["umount", "-l", str(data_root)], check=True)


def _materialize(instance: DagsterInstance, landing: Path, root: Path, selection: list[str], batch: str | None):
    """Materialize `selection` (one batch, or the unpartitioned stats) against data root `root`."""
    return run_cheap(instance, landing, root, selection, batch, RUN_CONFIG["ops"])


def _upstream(stage: str, inclusive: bool) -> list[str]:
    return STAGES[: STAGES.index(stage) + inclusive]


def _build(instance, landing: Path, root: Path, batches: dict[str, list[str]]) -> None:
    for batch, selection in batches.items():
        if selection:
            assert _materialize(instance, landing, root, selection, batch).success


def _tree(root: Path) -> dict[str, str]:
    """Every file under `root` (hidden ones included; lock files and the filler aside) -> its SHA-256."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.parent.name != ".locks" and p.name != "filler.bin"
    }


def _copy_tree(root: Path, to: Path) -> Path:
    """A copy of the data root on the ordinary disk (no filler, no locks): a twin that never sees a fault."""
    shutil.copytree(root, to, ignore=shutil.ignore_patterns(".locks", "filler.bin"))
    return to


def _outputs(root: Path, stage: str, batch: str) -> dict[str, str]:
    """The published output of `stage` for `batch` (tensors: the files of the current generation)."""
    folder = {"raw_images": "raw", "clean_images": "clean", "training_tensors": "tensors"}[stage]
    folder_path = root / folder / batch
    if stage == "training_tensors":
        folder_path = folder_path / json.loads((folder_path / "current.json").read_text())["generation"]
    return _tree(folder_path)


def _failure(result) -> str:
    """The message of the run's Dagster Failure (a raw exception has none: the test then fails)."""
    assert not result.success
    events = result.get_step_failure_events()
    assert events, "the run failed without a step failure"
    user = events[0].step_failure_data.user_failure_data
    assert user is not None, f"not a clear Failure but a raw error:\n{events[0].step_failure_data.error.to_string()}"
    return user.description


def _assert_clear(message: str, root: Path, advice: tuple[str, ...]) -> None:
    assert message.startswith(f"could not write {root}/"), f"the message names no path under the data root: {message}"
    for words in advice:
        assert words in message, f"{words!r} missing from: {message}"
    assert "Traceback" not in message


@pytest.fixture
def two_batches(make_batch, landing, instance) -> Callable[[], dict[str, str]]:
    """Land batches b1 and b2 (different images) and register them in that order."""

    def _make() -> dict[str, str]:
        make_batch("b1", per_class=3, classes=3)
        make_batch("b2", per_class=3, classes=3, offset=3)
        instance.add_dynamic_partitions(BATCHES, ["b1", "b2"])
        return _tree(landing)

    return _make


@pytest.mark.parametrize("fill", ["full", "partial"])
@pytest.mark.parametrize("stage", STAGES)
def test_disk_full_fails_clearly_keeps_everything_and_retries(
    stage, fill, disk, instance, two_batches, landing, data_root, tmp_path
):
    """b1 complete, b2 upstream done; the stage on b2 (new output) and on b1 (replacing a version) hits ENOSPC."""
    landed = two_batches()
    _build(instance, landing, data_root, {"b1": _upstream(stage, True), "b2": _upstream(stage, False)})
    before = _tree(data_root)
    b1_before = _outputs(data_root, stage, "b1")
    reference = _copy_tree(data_root, tmp_path / "reference")

    disk.fill(PARTIAL_HEADROOM[stage] if fill == "partial" else 0)
    for batch in ("b2", "b1"):
        message = _failure(_materialize(instance, landing, data_root, [stage], batch))
        _assert_clear(message, data_root, FULL_ADVICE)
        assert _tree(data_root) == before, f"{stage}[{batch}] left a partial or changed file behind"
    assert _outputs(data_root, stage, "b1") == b1_before
    assert _tree(landing) == landed

    disk.free()
    assert _materialize(instance, landing, data_root, [stage], "b2").success
    assert _materialize(instance, landing, reference, [stage], "b2").success
    for batch in ("b1", "b2"):
        assert _outputs(data_root, stage, batch) == _outputs(reference, stage, batch)


def test_disk_full_normalization_stats_keeps_the_previous_file(
    disk, instance, two_batches, landing, data_root, tmp_path
):
    """Stats over b1 published; b2's tensors added; recomputing on a full disk keeps the b1 stats, retry matches."""
    two_batches()
    _build(instance, landing, data_root, {"b1": STAGES})
    assert _materialize(instance, landing, data_root, ["normalization_stats"], None).success
    stats_path = data_root / "stats" / "normalization.json"
    previous = stats_path.read_bytes()
    _build(instance, landing, data_root, {"b2": STAGES})
    before = _tree(data_root)
    reference = _copy_tree(data_root, tmp_path / "reference")

    disk.fill()
    message = _failure(_materialize(instance, landing, data_root, ["normalization_stats"], None))
    _assert_clear(message, data_root, FULL_ADVICE)
    assert _tree(data_root) == before and stats_path.read_bytes() == previous

    disk.free()
    assert _materialize(instance, landing, data_root, ["normalization_stats"], None).success
    assert _materialize(instance, landing, reference, ["normalization_stats"], None).success
    assert stats_path.read_bytes() == (reference / "stats" / "normalization.json").read_bytes() != previous


def test_read_only_data_root_fails_clearly_writes_nothing_and_retries(disk, instance, two_batches, landing, data_root):
    """Each stage rerun on a read-only data root fails clearly, writes nothing; once rw, identical outputs."""
    landed = two_batches()
    _build(instance, landing, data_root, {"b1": STAGES})
    assert _materialize(instance, landing, data_root, ["normalization_stats"], None).success
    before = _tree(data_root)
    b1_outputs = {s: _outputs(data_root, s, "b1") for s in STAGES}

    disk.remount("ro")
    for stage, batch in [(s, "b1") for s in STAGES] + [("normalization_stats", None)]:
        message = _failure(_materialize(instance, landing, data_root, [stage], batch))
        _assert_clear(message, data_root, READ_ONLY_ADVICE)
    assert _tree(data_root) == before
    assert _tree(landing) == landed

    disk.remount("rw")
    _build(instance, landing, data_root, {"b1": STAGES})
    assert _materialize(instance, landing, data_root, ["normalization_stats"], None).success
    assert {s: _outputs(data_root, s, "b1") for s in STAGES} == b1_outputs
    assert _tree(data_root)["stats/normalization.json"] == before["stats/normalization.json"]


def test_disk_full_at_the_tensors_pointer_leaves_no_orphan_generation(disk, instance, two_batches, landing, data_root):
    """Space for exactly one more generation of b1 but not its `current.json`: the unpublished generation goes."""
    two_batches()
    _build(instance, landing, data_root, {"b1": STAGES})
    before = _tree(data_root)
    generation = _outputs(data_root, "training_tensors", "b1")
    pointer = data_root / "tensors" / "b1" / "current.json"
    current = pointer.parent / json.loads(pointer.read_text())["generation"]
    disk.fill(sum(-(-p.stat().st_size // PAGE) * PAGE for p in current.iterdir()))

    message = _failure(_materialize(instance, landing, data_root, ["training_tensors"], "b1"))
    _assert_clear(message, data_root, FULL_ADVICE)
    assert str(pointer) in message, "the fault should hit the pointer, after the generation was complete"
    assert _tree(data_root) == before

    disk.free()
    assert _materialize(instance, landing, data_root, ["training_tensors"], "b1").success
    assert _outputs(data_root, "training_tensors", "b1") == generation


@contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """Bind-mount `folder` onto itself read-only (its contents stay visible) for the block; always unmounted."""
    subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_read_only_stage_folder_fails_clearly_writes_nothing_and_retries(
    disk, instance, two_batches, landing, data_root
):
    """Only the stage's own folder read-only (locks writable): each stage fails clearly; once rw, identical outputs."""
    landed = two_batches()
    _build(instance, landing, data_root, {"b1": STAGES})
    assert _materialize(instance, landing, data_root, ["normalization_stats"], None).success
    before = _tree(data_root)
    b1_outputs = {s: _outputs(data_root, s, "b1") for s in STAGES}

    folders = {"raw_images": "raw", "clean_images": "clean", "training_tensors": "tensors"}
    for stage, batch in [(s, "b1") for s in STAGES] + [("normalization_stats", None)]:
        with _read_only(data_root / folders.get(stage, "stats")):
            message = _failure(_materialize(instance, landing, data_root, [stage], batch))
        _assert_clear(message, data_root, READ_ONLY_ADVICE)
        assert _tree(data_root) == before, f"{stage} changed files under a read-only stage folder"
    assert _tree(landing) == landed

    _build(instance, landing, data_root, {"b1": STAGES})
    assert _materialize(instance, landing, data_root, ["normalization_stats"], None).success
    assert {s: _outputs(data_root, s, "b1") for s in STAGES} == b1_outputs


def test_checkpoint_save_on_a_full_disk_keeps_the_previous_checkpoint(disk, data_root):
    """save_checkpoint hits ENOSPC: StorageError naming the file, no temporary left, the last checkpoint loads."""
    root = data_root / "models" / "gan"
    state = {"generator": {"weight": torch.arange(64 << 10, dtype=torch.float32)}}
    first = save_checkpoint(root, "v1", 100, state)
    first_bytes = first.read_bytes()

    disk.fill()
    with pytest.raises(StorageError) as raised:
        save_checkpoint(root, "v1", 200, state)
    assert str(root / "v1" / "ckpt-000000200.pt") in str(raised.value) and "disk is full" in str(raised.value)
    assert sorted(p.name for p in (root / "v1").iterdir()) == ["ckpt-000000100.pt"]
    assert list_checkpoints(root, "v1") == [first] and first.read_bytes() == first_bytes
    assert load_latest(root, "v1").step == 100

    disk.free()
    second = save_checkpoint(root, "v1", 200, state)
    loaded = load_latest(root, "v1")
    assert (loaded.path, loaded.step) == (second, 200)
    assert torch.equal(loaded.state["generator"]["weight"], state["generator"]["weight"])
