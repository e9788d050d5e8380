"""The `recommended` rule both ways (decided on val, never on test), a val CI that includes zero, and the warnings
that the comparison itself is weak (an undertrained baseline is tests/report/test_baseline.py)."""

from __future__ import annotations

import pytest

from synthaug.report.arms import ARMS
from synthaug.report.build import build_report
from synthaug.report.data import ReportConfig
from synthaug.report.stats import paired_gain
from synthaug.report.verdict import decide
from tests.report.helpers import report_data, seed_runs


def test_recommended_when_synthetic_wins_on_val(garments):
    val = {"a": [0.70, 0.71, 0.72], "b": [0.80, 0.81, 0.80], "c": [0.82, 0.83, 0.83]}
    test = {"a": [0.70, 0.70, 0.70], "b": [0.80, 0.80, 0.80], "c": [0.81, 0.82, 0.81]}
    report = build_report(report_data(garments), ReportConfig(cas=False), runs=seed_runs(val, test))
    assert report.recommended
    assert report.verdict.startswith("RECOMMENDED") and "validation split" in report.verdict
    assert report.gain_val.mean == pytest.approx(0.0233333, abs=1e-6) and report.gain_val.excludes_zero_above()
    assert report.gain_test.mean == pytest.approx(0.0133333, abs=1e-6)
    assert [row["arm"] for row in report.arm_table()] == [f"({k}) {v}" for k, v in ARMS.items()]


def test_not_recommended_when_it_loses_on_val_even_if_it_wins_on_test(garments):
    val = {"a": [0.70, 0.70, 0.70], "b": [0.82, 0.83, 0.82], "c": [0.80, 0.81, 0.81]}
    test = {"a": [0.70, 0.70, 0.70], "b": [0.80, 0.80, 0.80], "c": [0.85, 0.86, 0.85]}
    report = build_report(report_data(garments), ReportConfig(cas=False), runs=seed_runs(val, test))
    assert not report.recommended
    assert report.gain_test.excludes_zero_above() and report.gain_val.mean < 0
    assert report.verdict.startswith("NOT RECOMMENDED") and "never used to decide" in report.verdict


def test_an_implausible_test_gain_is_flagged(garments):
    val = {"a": [0.80, 0.81, 0.80], "b": [0.80, 0.81, 0.80], "c": [0.82, 0.83, 0.83]}
    test = {"a": [0.80, 0.80, 0.80], "b": [0.70, 0.70, 0.71], "c": [0.80, 0.81, 0.80]}
    report = build_report(report_data(garments), ReportConfig(cas=False, steps=50), runs=seed_runs(val, test))
    assert report.recommended and len(report.warnings) == 1 and "leakage" in report.warnings[0]
    assert report.verdict.endswith(report.warnings[0])


def test_a_val_gain_whose_ci_includes_zero_is_not_recommended_unless_asked():
    gain = paired_gain([0.85, 0.86, 0.84], [0.83, 0.83, 0.86])
    assert gain.mean > 0 and not gain.excludes_zero_above()
    recommended, verdict = decide(gain, None, require_val_ci=True)
    assert not recommended and "includes zero" in verdict
    recommended, verdict = decide(gain, None, require_val_ci=False)
    assert recommended and verdict.startswith("RECOMMENDED")
    assert decide(None, None, True)[0] is False


def test_the_verdict_says_whether_a_set_that_does_not_win_costs_accuracy():
    """'Not worse' (the CI contains zero) and 'worse' (the whole CI below zero) read differently, and neither is
    recommended; one seed says it cannot tell."""
    level = paired_gain([0.85, 0.84, 0.86], [0.85, 0.85, 0.85])
    assert level.low < 0 < level.high
    recommended, verdict = decide(level, None, require_val_ci=True)
    assert not recommended and "not measurably worse" in verdict
    worse = paired_gain([0.80, 0.81, 0.80], [0.85, 0.85, 0.86])
    assert worse.high < 0
    recommended, verdict = decide(worse, None, require_val_ci=True)
    assert not recommended and "measurably worse (the whole CI lies below zero)" in verdict
    single = paired_gain([0.80], [0.85])
    assert "cannot be told" in decide(single, None, require_val_ci=True)[1]
