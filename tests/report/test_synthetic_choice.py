"""Arm (c)'s synthetic weight and images per batch chosen on half 1 of val and reported on half 2: fixed stratified
halves, a choice that never looks at the reporting half, and a tiny real report that states what it chose."""

from __future__ import annotations

import pytest
import torch

from synthaug.report.arms import SeedRun
from synthaug.report.build import build_report
from synthaug.report.choice import choose_synthetic, split_val
from synthaug.report.data import ReportConfig
from tests.report.helpers import CLASSES, report_data


def test_val_halves_are_fixed_disjoint_and_keep_the_class_mix(garments):
    data = report_data(garments)
    halves = split_val(data)
    again = split_val(data)
    assert torch.equal(halves.val[0], again.val[0]) and torch.equal(halves.val_select[0], again.val_select[0])
    assert len(halves.val[0]) + len(halves.val_select[0]) == len(data.val[0]) == 60
    for c in range(len(CLASSES)):
        assert int((halves.val[1] == c).sum()) == int((halves.val_select[1] == c).sum()) == 10
    pooled = torch.cat([halves.val[0], halves.val_select[0]]).flatten(1)
    assert len(torch.unique(pooled, dim=0)) == len(torch.unique(data.val[0].flatten(1), dim=0))
    assert halves.sizes()["val_select"] == 30 and data.sizes().keys() == halves.sizes().keys() - {"val_select"}
    tiny = report_data(garments, val=(data.val[0][:3], torch.tensor([0, 1, 2])))
    with pytest.raises(ValueError, match="too few to split"):
        split_val(tiny)


def test_the_candidate_is_chosen_on_the_choosing_half_only(garments):
    data = split_val(report_data(garments))

    def run(seed: int, weight: float, select: float, report: float) -> SeedRun:
        return SeedRun("c", seed, report, 0.5, [0.5] * 3, 1, 1, 0.1, 1.0, select, weight, 8)

    # weight 1.0 is better on the reporting half, but only the choosing half may decide
    runs = [run(s, 0.3, 0.80, 0.60) for s in range(3)] + [run(s, 1.0, 0.70, 0.90) for s in range(3)]
    choice = choose_synthetic(runs, data, 0.95)
    assert (choice.weight, choice.per_batch) == (0.3, 8) and (choice.select_size, choice.report_size) == (30, 30)
    assert choice.candidates[(1.0, 8)].mean == pytest.approx(0.70)
    assert "0.3" in choice.sentence() and "half 1 of val (30 images)" in choice.sentence()
    assert [c["synthetic_weight"] for c in choice.to_dict()["candidates"]] == [0.3, 1.0]


def test_candidates_default_to_todays_single_setting_and_are_validated():
    assert ReportConfig().synthetic_candidates() == [(0.3, 32)] and not ReportConfig().held_out
    grid = ReportConfig(synthetic_weights=[0.3, 1.0], synthetic_shares=[16, 32])
    assert grid.synthetic_candidates() == [(0.3, 16), (1.0, 16), (0.3, 32), (1.0, 32)] and grid.held_out
    with pytest.raises(ValueError, match="synthetic_shares must be non-negative integers"):
        ReportConfig(synthetic_shares=[8, -1])
    with pytest.raises(ValueError, match="every synthetic_shares value"):
        ReportConfig(synthetic_labels="soft", synthetic_shares=[0, 8])


def test_tiny_report_chooses_on_half_one_and_reports_the_gain_on_half_two(garments):
    config = ReportConfig(
        seeds=2, steps=8, batch_size=16, width=4, evaluations=2, synthetic_per_batch=8, baseline_tolerance=0.5,
        classic_shares=(1.0,), cas=False, synthetic_weights=(0.3, 1.0),
    )  # fmt: skip
    report = build_report(report_data(garments), config)
    choice = report.synthetic_choice
    assert report.sizes["val"] == report.sizes["val_select"] == 30 and len(choice["candidates"]) == 2
    c_runs = report.arms["c"].runs
    assert [r.seed for r in c_runs] == [0, 1] and {r.synthetic_weight for r in c_runs} == {choice["synthetic_weight"]}
    assert all(r.select_accuracy is not None for arm in report.arms.values() for r in arm.runs)
    b_runs = report.arms["b"].runs
    half_two = [c.val_accuracy - b.val_accuracy for b, c in zip(b_runs, c_runs, strict=True)]
    assert report.gain_val.mean == pytest.approx(sum(half_two) / 2)
    assert f"synthetic weight {choice['synthetic_weight']:g} with 8 synthetic images per batch" in report.verdict
