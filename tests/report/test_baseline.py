"""The fair baseline: arm (b)'s classic share chosen on val before (c) is trained, and a gain declared not
measurable when even the best (b) is below (a) on val."""

from __future__ import annotations

import pytest
import torch

from synthaug.report.arms import SeedRun, run_arms
from synthaug.report.baseline import choose_baseline
from synthaug.report.build import build_report
from synthaug.report.data import ReportConfig
from tests.report.helpers import CLASSES, report_data, seed_runs


def _b_runs(share: float, vals: list[float]) -> list[SeedRun]:
    return [SeedRun("b", seed, v, 0.5, [0.5] * len(CLASSES), 10, 10, 0.1, share) for seed, v in enumerate(vals)]


def test_the_share_with_the_best_mean_val_accuracy_is_chosen_and_checked_against_a():
    a = seed_runs({"a": [0.80, 0.81, 0.80]}, {"a": [0.8] * 3})
    runs = a + _b_runs(1.0, [0.76, 0.77, 0.75]) + _b_runs(0.5, [0.80, 0.80, 0.81]) + _b_runs(0.0, [0.79, 0.80, 0.80])
    choice = choose_baseline(runs, tolerance=0.01, confidence=0.95)
    assert choice.classic_share == 0.5 and choice.sound
    assert list(choice.candidates) == [(1.0, True), (0.5, True), (0.0, True)]
    assert choice.gap.mean == pytest.approx(0.0)
    strict = choose_baseline(a + _b_runs(1.0, [0.78, 0.79, 0.78]), tolerance=0.01, confidence=0.95)
    assert not strict.sound and strict.gap.mean == pytest.approx(-0.02)
    tie = choose_baseline(a + _b_runs(1.0, [0.8] * 3) + _b_runs(0.0, [0.8] * 3), tolerance=0.01, confidence=0.95)
    assert tie.classic_share == 1.0  # ties keep the usual recipe: all copies
    assert choose_baseline(a, tolerance=0.01, confidence=0.95) is None


def test_a_baseline_below_real_alone_makes_the_gain_not_measurable_instead_of_a_verdict(garments):
    val = {"a": [0.85, 0.86, 0.85], "b": [0.80, 0.81, 0.80], "c": [0.90, 0.91, 0.90]}
    test = {"a": [0.80, 0.80, 0.80], "b": [0.70, 0.70, 0.71], "c": [0.80, 0.81, 0.80]}
    report = build_report(report_data(garments), ReportConfig(cas=False, steps=50), runs=seed_runs(val, test))
    assert not report.recommended and report.gain_val is None
    assert report.verdict.startswith("NOT MEASURABLE: the baseline is undertrained. At 50 steps")
    assert "-5.00" in report.verdict and "1.00-point tolerance" in report.verdict
    assert any("baseline (b) is below (a)" in item for item in report.not_measured)
    assert report.baseline["sound"] is False and report.to_dict()["baseline"]["rule"].startswith("arm (b) candidates")


def test_harmful_classic_copies_are_left_out_by_the_choice_and_c_uses_the_chosen_share(garments):
    """Real training: 'classic' copies with shuffled labels hurt (b) at share 1, so share 0 wins on val, and arm (c)
    is trained at share 0; with only share 1 allowed, (b) falls far below (a) and (c) is not trained at all. (60 val
    images make a point 0.6 images, hence the 5-point tolerance.)"""
    x, y = garments["train"]
    noisy = (x.flip(3).repeat(3, 1, 1, 1), torch.randint(0, len(CLASSES), (3 * len(y),), generator=torch.Generator()))
    data = report_data(garments, train_aug=noisy)
    tiny = {"seeds": 2, "steps": 60, "batch_size": 16, "width": 4, "evaluations": 3, "baseline_tolerance": 0.05}
    tiny["classic_optional"] = False
    config = ReportConfig(**tiny, classic_shares=(1.0, 0.0))
    lines: list[str] = []
    runs = run_arms(data, config, lines.append)
    seed0 = sorted((r.arm, r.classic_share) for r in runs if r.seed == 0)
    assert seed0 == [("a", 0.0), ("b", 0.0), ("b", 1.0), ("c", 0.0)]
    per_model = [line for line in lines if line.startswith("arm ")]
    assert (
        len(per_model) == len(runs) == 8
        and "; classic recipe: share 1 of the classic copies)" in per_model[1]
        and "8/8 models" in per_model[-1]
    )
    report = build_report(data, config, runs=runs)
    assert report.baseline["classic_share"] == 0.0 and report.baseline["sound"]
    assert {r.classic_share for r in report.arms["b"].runs} == {0.0} and report.gain_val is not None

    only_copies = ReportConfig(**tiny, classic_shares=(1.0,))
    lines.clear()
    runs = run_arms(data, only_copies, lines.append)
    assert {r.arm for r in runs} == {"a", "b"} and any(line.startswith("arm c not trained") for line in lines)
    report = build_report(data, only_copies, runs=runs)
    assert report.verdict.startswith("NOT MEASURABLE") and not report.recommended


def test_classic_shares_are_checked():
    with pytest.raises(ValueError, match="classic_shares"):
        ReportConfig(classic_shares=(1.5,))
    with pytest.raises(ValueError, match="classic_shares"):
        ReportConfig(classic_shares=())
    assert ReportConfig(classic_shares=[1, 0]).classic_shares == (1.0, 0.0)


def test_no_classic_augmentation_is_a_candidate_so_the_baseline_is_never_below_real_alone(garments):
    """With `classic_optional` (the default), harmful classic copies lose to arm (a)'s own recipe, reused as the
    "no classic augmentation" candidate without training again: the baseline is sound, and arm (c) adds the
    synthetic images to plain real batches (no copies, no online flips or shifts)."""
    x, y = garments["train"]
    noisy = (x.flip(3).repeat(3, 1, 1, 1), torch.randint(0, len(CLASSES), (3 * len(y),), generator=torch.Generator()))
    data = report_data(garments, train_aug=noisy)
    config = ReportConfig(seeds=2, steps=60, batch_size=16, width=4, evaluations=3, classic_shares=(1.0,))
    lines: list[str] = []
    runs = run_arms(data, config, lines.append)
    assert sorted((r.arm, r.classic_share, r.online) for r in runs if r.seed == 0) == [
        ("a", 0.0, False),
        ("b", 0.0, False),
        ("b", 1.0, True),
        ("c", 0.0, False),
    ]
    assert sum(line.startswith("arm ") for line in lines) == 6  # the reused runs are not trained again
    a_runs = [r for r in runs if r.arm == "a"]
    none = [r for r in runs if r.arm == "b" and not r.online]
    assert [(r.seed, r.val_accuracy) for r in none] == [(r.seed, r.val_accuracy) for r in a_runs]
    report = build_report(data, config, runs=runs)
    assert report.baseline["sound"] and report.baseline["recipe"] == "no classic augmentation"
    assert "no classic augmentation" in report.baseline["rule"] and report.gain_val is not None
    assert not report.verdict.startswith("NOT MEASURABLE")
