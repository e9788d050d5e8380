"""The report end to end: the unlabeled path and a missing test split say what they could not measure, and a tiny
real run of the three arms on Fashion-MNIST garments is built, written and read back."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from synthaug.report.arms import ARMS
from synthaug.report.build import build_report
from synthaug.report.data import ReportConfig, ReportData
from synthaug.report.write import read_report, write_report
from tests.report.helpers import CLASSES, report_data


def test_unlabeled_data_reports_what_it_could_not_measure(garments):
    empty = (torch.empty(0, 1, 32, 32, dtype=torch.uint8), torch.empty(0, dtype=torch.long))
    data = ReportData(classes=(), train=empty, train_aug=empty, val=empty, test=empty, synthetic=empty)
    report = build_report(data, ReportConfig())
    assert not report.labeled and not report.recommended and not report.arms
    assert "not measurable" in report.verdict and "labeled" in report.verdict
    assert any("CAS" in item for item in report.not_measured)
    assert report.to_dict()["gain_val"] is None


def test_labeled_data_without_a_test_split_names_the_missing_split(garments):
    no_test = (garments["test"][0][:0], garments["test"][1][:0])
    report = build_report(report_data(garments, test=no_test), ReportConfig())
    assert not report.labeled and not report.recommended and not report.arms
    assert "0 test images" in report.verdict and "test split(s)" in report.verdict
    assert "training_tensors" in report.verdict and "Without labels" not in report.verdict
    assert "CAS: needs labeled test images" in report.not_measured


def test_tiny_real_run_of_the_three_arms(tmp_path, garments):
    """The three arms' mechanics; at 12 steps every baseline is noise, so any (b) counts as sound here."""
    config = ReportConfig(
        seeds=2, steps=12, batch_size=16, width=4, evaluations=3, synthetic_per_batch=8, baseline_tolerance=0.5
    )
    report = build_report(report_data(garments), config)
    assert set(report.arms) == set(ARMS) and report.baseline["sound"]
    for arm in report.arms.values():
        assert arm.test.n == 2 and [r.steps for r in arm.runs] == [12, 12]
        assert arm.test.low <= arm.test.mean <= arm.test.high
        assert set(arm.per_class_test) == set(CLASSES)
        assert math.isclose(np.mean([r.test_accuracy for r in arm.runs]), arm.test.mean)
    b, c = report.arms["b"].runs, report.arms["c"].runs
    differences = [y.test_accuracy - x.test_accuracy for x, y in zip(b, c, strict=True)]
    assert report.gain_test.mean == pytest.approx(np.mean(differences))
    assert report.cas is not None and 0 <= report.cas["cas"] <= 1 and report.cas["cas_n"] == 90
    assert report.verdict.startswith(("RECOMMENDED", "NOT RECOMMENDED"))

    written = write_report(report, tmp_path / "report", report_data(garments))
    document = read_report(tmp_path / "report")
    assert document["recommended"] == report.recommended and document["verdict"] == report.verdict
    assert document["arms"]["c"]["test"]["n"] == 2 and len(document["arms"]["c"]["runs"]) == 2
    for name in document["files"].values():
        assert (tmp_path / "report" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert written.samples_png is not None and json.loads(written.report_json.read_text())["labeled"]
