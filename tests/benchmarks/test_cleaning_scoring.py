"""How the cleaning benchmark scores a tool (benchmarks/cleaning_scoring.py): duplicates are judged per group, so
which file of a group a tool keeps is its own policy, while removing every file of a group, an original without
copies, or a flat file as a "duplicate" is an error."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

ROWS = [  # path, truth, source, category, kind
    ("images/a.png", "", "", "original", "fmnist"),
    ("images/a_exact.png", "exact_duplicate", "images/a.png", "exact_copy", "fmnist"),
    ("images/a_near.png", "near_duplicate", "images/a.png", "near_resize", "fmnist"),
    ("images/b.png", "", "", "original", "fmnist"),
    ("images/flat.png", "low_information", "", "flat", "flat"),
    ("images/blur.png", "blurry", "", "blurry_mild", "photo"),
]


@pytest.fixture()
def scoring(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import cleaning_scoring

    yield cleaning_scoring
    sys.modules.pop("cleaning_scoring", None)


@pytest.fixture()
def truth(scoring, tmp_path: Path):
    with open(tmp_path / "truth.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "truth", "source", "category", "kind"])
        writer.writerows(ROWS)
    return scoring.Truth(tmp_path)


def files(truth, *names: str) -> set[str]:
    return {str((truth.root / "images" / name).resolve()) for name in names}


def test_keeping_any_one_file_of_a_group_is_right(scoring, truth):
    for removed in (("a_exact.png", "a_near.png"), ("a.png", "a_near.png")):
        metrics = scoring.evaluate(truth, {"near_duplicate": files(truth, *removed)}, ("duplicate",))
        counts = metrics["duplicate (all files)"]
        assert (counts["tp"], counts["fp"], counts["fn"], counts["f1"]) == (2, 0, 0, 1.0)


def test_removing_a_whole_group_an_original_without_copies_or_a_flat_file_counts_against_the_tool(scoring, truth):
    removed = files(truth, "a.png", "a_exact.png", "a_near.png", "b.png", "flat.png")
    metrics = scoring.evaluate(truth, {"duplicate": removed}, ("duplicate",))
    assert (metrics["duplicate (all files)"]["tp"], metrics["duplicate (all files)"]["fp"]) == (2, 3)
    # the dedup scope looks at originals and their copies only: the flat file is not its business
    assert (metrics["duplicate (dedup scope)"]["tp"], metrics["duplicate (dedup scope)"]["fp"]) == (2, 2)


def test_single_file_reasons_and_any_removal(scoring, truth):
    predicted = {"blurry": files(truth, "blur.png", "b.png"), "exact_duplicate": files(truth, "a_exact.png")}
    metrics = scoring.evaluate(truth, predicted, ("blurry", "low_information", "duplicate"))
    assert metrics["blurry"]["precision"] == 0.5 and metrics["blurry"]["recall"] == 1.0
    assert metrics["low_information"]["recall"] == 0.0
    assert metrics["exact_duplicate"]["f1"] == 1.0 and metrics["near_duplicate"]["fn"] == 1
    # four files should go (flat, blurry, two copies): two removed rightly, one original wrongly, two missed
    anything = metrics["any removal"]
    assert (anything["tp"], anything["fp"], anything["fn"]) == (2, 1, 2)


def test_category_table_and_keeper_share(scoring, truth):
    ours = {"near_duplicate": files(truth, "a.png", "a_near.png"), "low_information": files(truth, "flat.png")}
    table = scoring.category_table(truth, {"ours": ours})
    assert table.loc["exact_copy", "ours ok%"] == 100.0  # its group ends with one file kept: this one
    assert table.loc["flat", "ours ok%"] == 100.0 and table.loc["blurry_mild", "ours ok%"] == 0.0
    frame = pd.DataFrame(
        {
            "path": sorted(files(truth, *(Path(row[0]).name for row in ROWS))),
            "status": ["kept"] * len(ROWS),
        }
    )
    frame.loc[frame["path"].str.endswith("/a.png"), "status"] = "removed"
    assert scoring.keeper_share(truth, frame) == 0.0  # the one group lost its untouched original
    frame["status"] = "kept"
    assert scoring.keeper_share(truth, frame) == 1.0


def test_format_and_verdict(scoring):
    assert scoring.fmt(float("nan")).strip() == "-" and scoring.fmt(0.93456) == "0.935"
    assert scoring.mark(True) == "MET" and scoring.mark(False) == "NOT MET"
