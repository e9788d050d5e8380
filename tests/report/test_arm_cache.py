"""Arms (a) and (b) read back from an earlier report: a rerun with another synthetic set trains only arm (c) and gives
the report a rerun from scratch gives; other real images, another classifier setting or a damaged entry train again."""

from __future__ import annotations

import dataclasses
import json
import shutil

from synthaug.report.arm_cache import ArmCache
from synthaug.report.arms import run_arms
from synthaug.report.build import build_report
from synthaug.report.data import ReportConfig
from tests.report.helpers import report_data

CONFIG = ReportConfig(steps=12, batch_size=16, width=4, evaluations=3, seeds=2, cas=False, baseline_tolerance=0.99)


def _key(run) -> tuple:
    """Everything of a run except the seconds it took."""
    return tuple(v for k, v in dataclasses.asdict(run).items() if k != "seconds")


def _trained(lines: list[str]) -> list[str]:
    """The arms of the models a run trained, from its per-model progress lines."""
    return [line.split()[1] for line in lines if line.startswith("arm ") and " models, " in line]


def test_a_rerun_with_a_new_synthetic_set_trains_only_arm_c_and_reports_as_a_fresh_run(garments, tmp_path):
    folder = tmp_path / "arm_runs"
    first_lines: list[str] = []
    run_arms(report_data(garments), CONFIG, first_lines.append, cache=ArmCache(folder))
    stored = sorted(folder.glob("*.json"))
    assert len(stored) == 2 * 3, "arm (a) and two (b) recipes for each of 2 seeds"
    assert sorted(_trained(first_lines)) == ["a"] * 2 + ["b"] * 4 + ["c"] * 2

    other_set = (garments["synthetic"][0].flip(2), garments["synthetic"][1])
    data = report_data(garments, synthetic=other_set)
    lines: list[str] = []
    cached = run_arms(data, CONFIG, lines.append, cache=ArmCache(folder))
    assert _trained(lines) == ["c", "c"]
    assert any("6 of the 6 models of arms (a) and (b) read back" in line for line in lines)
    fresh = run_arms(data, CONFIG)
    assert [_key(r) for r in cached] == [_key(r) for r in fresh]
    assert sorted(folder.glob("*.json")) == stored, "arm (c) is never stored"


def test_other_real_images_or_classifier_settings_train_again_and_the_synthetic_weight_does_not(garments, tmp_path):
    folder = tmp_path / "arm_runs"
    run_arms(report_data(garments), CONFIG, cache=ArmCache(folder))
    x, y = garments["train"]
    changed = x.clone()
    changed[0, 0, 16, 16] ^= 1  # one pixel of one train image
    cases = {
        "one train pixel": (report_data(garments, train=(changed, y)), CONFIG, 6),
        "steps": (report_data(garments), dataclasses.replace(CONFIG, steps=13), 6),
        "synthetic weight": (report_data(garments), dataclasses.replace(CONFIG, synthetic_weight=0.7), 0),
    }
    for what, (data, config, expected) in cases.items():
        case = tmp_path / what
        shutil.copytree(folder, case)
        lines: list[str] = []
        run_arms(data, config, lines.append, cache=ArmCache(case))
        assert len([arm for arm in _trained(lines) if arm != "c"]) == expected, what


def test_a_damaged_entry_is_trained_again_and_rewritten(garments, tmp_path):
    folder = tmp_path / "arm_runs"
    data = report_data(garments)
    first = run_arms(data, CONFIG, cache=ArmCache(folder))
    damaged, wrong_shape = sorted(folder.glob("*.json"))[:2]
    damaged.write_text('{"arm": "a", "se')
    wrong_shape.write_text(json.dumps({"arm": "a", "unknown_field": 1, "test_accuracy": 0.5}))
    lines: list[str] = []
    again = run_arms(data, CONFIG, lines.append, cache=ArmCache(folder))
    assert len([arm for arm in _trained(lines) if arm != "c"]) == 2
    assert [_key(r) for r in again] == [_key(r) for r in first]
    assert json.loads(damaged.read_text())["arm"] in ("a", "b")


def test_build_report_keeps_runs_only_when_reuse_is_on(garments, tmp_path):
    data = report_data(garments)
    build_report(data, dataclasses.replace(CONFIG, reuse_baseline_runs=False), arm_runs=tmp_path / "off")
    assert not (tmp_path / "off").exists()
    report = build_report(data, CONFIG, arm_runs=tmp_path / "on")
    assert len(list((tmp_path / "on").glob("*.json"))) == 6
    assert report.config["reuse_baseline_runs"] is True
