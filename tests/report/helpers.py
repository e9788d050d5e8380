"""Shared pieces of the report tests: the three garment classes, report data made of them, hand-made seed runs."""

from __future__ import annotations

from synthaug.report.arms import SeedRun
from synthaug.report.data import ReportData

CLASSES = ("T-shirt_top", "Trouser", "Pullover")


def report_data(garments, **overrides) -> ReportData:
    """The garments as report data of CLASSES, with some parts replaced."""
    return ReportData(classes=CLASSES, **{**garments, **overrides})


def seed_runs(val: dict[str, list[float]], test: dict[str, list[float]]) -> list[SeedRun]:
    """Hand-made seed runs with the given val and test accuracies per arm."""
    return [
        SeedRun(arm, seed, val[arm][seed], test[arm][seed], [test[arm][seed]] * len(CLASSES), 10, 10, 0.1)
        for arm in val
        for seed in range(len(val[arm]))
    ]
