"""The console of `synthaug`, run in-process on a real instance: the assets' progress lines and one line of what
happened and what to do for every failure, never a traceback; Dagster's DEBUG events go to the printed log file."""

from __future__ import annotations

import importlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

import assets.raw_images
import pipelines.definitions
from pipelines.cli import main

TRACEBACK_MARKS = ("Traceback", "Stack Trace", 'File "', "DagsterExecutionStepExecutionError")


@pytest.fixture
def cli(monkeypatch, tmp_path: Path, landing: Path) -> Iterator:
    """`synthaug` in this process on a temporary DAGSTER_HOME and data root; yields main. The definitions read the
    data root and landing folder when imported, so they are imported again with this test's, and after it."""
    monkeypatch.setenv("SYNTHAUG_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("SYNTHAUG_LANDING_DIR", str(landing))
    monkeypatch.setenv("NO_ALBUMENTATIONS_UPDATE", "1")
    importlib.reload(pipelines.definitions)
    yield main
    monkeypatch.undo()
    importlib.reload(pipelines.definitions)


def _console(capsys) -> str:
    """Everything the command printed, both streams, with no traceback in it."""
    out = capsys.readouterr()
    console = out.out + out.err
    assert not [mark for mark in TRACEBACK_MARKS if mark in console], console
    return console


def _event_log(console: str) -> str:
    """The text of the log file whose path the command printed."""
    path = re.search(r"Dagster's event log \(DEBUG, with tracebacks\): (\S+)", console).group(1)
    return Path(path).read_text(encoding="utf-8")


def test_a_batch_of_resized_copies_fails_its_check_in_one_line(cli, capsys, make_batch, landing):
    first = make_batch("b1", per_class=6, classes=3)
    for image in first.rglob("*.png"):
        copy = landing / "b2" / image.relative_to(first)
        copy.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(copy), cv2.resize(cv2.imread(str(image), cv2.IMREAD_UNCHANGED), (40, 40)))
    (landing / "b2" / "_READY").touch()
    assert cli(["register"]) == 0
    assert cli(["materialize", "--select", "raw_images,clean_images"]) == 1
    console = _console(capsys)
    assert re.search(r"^  \d\d:\d\d:\d\d raw_images: ingest b1 \(files\): 18/18, ", console, re.M)  # the asset's lines
    assert re.search(r"^  \d\d:\d\d:\d\d clean_images: done in \d+ s$", console, re.M)
    failed = [line.strip() for line in console.splitlines() if line.strip().startswith("batch b2: ")]
    assert len(failed) == 1, console
    assert re.fullmatch(
        r"batch b2: \d+ of 18 images removed \((\d+)% > 50%\): see the gallery of removed images .*, or raise "
        r"max_removed_share .*",
        failed[0],
    )
    events = _event_log(console)
    assert " - DEBUG - " in events and "STEP_START" in events and "ASSET_CHECK_EVALUATION" in events
    assert "DagsterAssetCheckFailedError" in events  # the traceback is kept, in the file


def test_a_failure_is_its_description_and_a_bug_names_where_its_traceback_is(cli, capsys, make_batch, monkeypatch):
    gone = make_batch("b1", per_class=1, classes=2)
    make_batch("b2", per_class=1, classes=2)
    assert cli(["register"]) == 0
    shutil.rmtree(gone)

    def broken(*args, **kwargs):
        raise RuntimeError("ingest exploded")

    monkeypatch.setattr(assets.raw_images, "ingest_batch", broken)
    assert cli(["materialize", "--select", "raw_images"]) == 1
    console = _console(capsys)
    lines = [line.strip() for line in console.splitlines()]
    assert f"raw_images[b1]: batch folder {gone} does not exist" in console, console
    assert [line for line in lines if line.startswith("raw_images[b1]: ")] == [
        f"raw_images[b1]: batch folder {gone} does not exist: it was moved or deleted after it was registered. "
        "Put it back, or delete the partition in the UI."
    ]
    bug = [line for line in lines if line.startswith("raw_images[b2] failed unexpectedly")]
    assert len(bug) == 1 and "(a bug: RuntimeError: ingest exploded); traceback in " in bug[0]
    log_path = bug[0].rsplit("traceback in ", 1)[1]
    events = Path(log_path).read_text(encoding="utf-8")
    assert "RuntimeError: ingest exploded" in events and 'File "' in events
