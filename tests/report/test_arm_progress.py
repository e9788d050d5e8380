"""Training the arms logs its optimizer steps across all models, at most every 5 s of a fake clock here (every step
then), with the total of all planned models from the first line on."""

from __future__ import annotations

import itertools
import re
import time

import synthaug.core.progress
from synthaug.report.arms import run_arms
from synthaug.report.data import ReportConfig
from tests.report.helpers import report_data

TINY = ReportConfig(steps=4, batch_size=16, width=4, evaluations=1, seeds=2)


class TenSecondsPerCall:
    """A monotonic clock for `synthaug.core.progress` that runs ahead of the real one by 10 s more at every read."""

    def __init__(self) -> None:
        self.ticks = itertools.count(time.monotonic() + 10.0, 10.0)

    def monotonic(self) -> float:
        return next(self.ticks)


def test_the_arms_log_every_step_across_all_models(garments, monkeypatch):
    monkeypatch.setattr(synthaug.core.progress, "time", TenSecondsPerCall())
    lines: list[str] = []
    runs = run_arms(report_data(garments), TINY, lines.append)
    trained = [r for r in runs if r.arm != "b" or r.online]  # "no classic augmentation" reuses arm (a)'s runs
    planned = int(re.search(r"\d+/(\d+) models", next(line for line in lines if " models, " in line)).group(1))
    steps = [re.match(r"arms: steps: (\d+)/(\d+), ", line) for line in lines if line.startswith("arms: steps: ")]
    assert [(int(m.group(1)), int(m.group(2))) for m in steps] == [
        (done, 4 * planned) for done in range(1, 4 * len(trained) + 1)
    ]
