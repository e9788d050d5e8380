"""Classes the synthetic set does not hold are named in the report's warnings, verdict and JSON: left out of
generation (with their train counts) or with every candidate rejected, never silently part of the gain."""

from __future__ import annotations

import pandas as pd
import torch

from synthaug.report.build import build_report
from synthaug.report.classes import missing_class_warnings
from synthaug.report.data import ReportConfig
from tests.report.helpers import CLASSES, report_data, seed_runs


def test_excluded_and_fully_rejected_classes_get_one_warning_each():
    manifest = pd.DataFrame({"label": [0, 0, 1, 1, 1], "accepted": [True, False, False, False, False]})
    warnings = missing_class_warnings(CLASSES, torch.tensor([0]), manifest, {"Pullover": 1})
    assert len(warnings) == 2
    assert "'Pullover' (1 train image) were left out of generation" in warnings[0]
    assert "min_class_images" in warnings[0]
    assert "'Trouser' (0 of 3 candidates)" in warnings[1] and "Pullover" not in warnings[1]
    assert missing_class_warnings(CLASSES, torch.tensor([0, 1, 2]), manifest, {}) == []


def test_the_report_names_an_excluded_class_in_its_warnings_verdict_and_json(garments):
    x, y = garments["synthetic"]
    data = report_data(garments, synthetic=(x[y != 2], y[y != 2]))
    val = {"a": [0.80, 0.81, 0.80], "b": [0.81, 0.82, 0.81], "c": [0.85, 0.86, 0.85]}
    runs = seed_runs(val, val)
    report = build_report(data, ReportConfig(cas=False, steps=50), runs=runs, excluded={"Pullover": 1})
    assert any("'Pullover' (1 train image) were left out of generation" in w for w in report.warnings)
    assert "Warning:" in report.verdict and "'Pullover' (1 train image)" in report.verdict
    document = report.to_dict()
    assert document["synthetic"]["excluded_classes"] == {"Pullover": 1}
    assert any("Pullover" in w for w in document["warnings"])
