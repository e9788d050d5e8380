"""The long tail in the report: the mean test recall of the rare classes per arm, and its paired gain (c) − (b),
the figure a long-tailed data set is judged by."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synthaug.report.arms import ArmSummary, SeedRun
from synthaug.report.stats import Interval, mean_ci, paired_gain


def rare_recall(run: SeedRun, rare: Sequence[int]) -> float:
    """Mean test recall of the rare classes in one run (NaN when none of them has test images)."""
    values = [run.per_class_test[c] for c in rare if run.per_class_test[c] is not None]
    return float(np.mean(values)) if values else float("nan")


def tail_summary(arms: dict[str, ArmSummary], rare: Sequence[int], classes: Sequence[str], confidence: float) -> dict:
    """Which classes are rare, each arm's mean rare-class recall on test with its CI, and the paired gain (c) − (b)
    (empty for a balanced train split)."""
    if not rare:
        return {}
    per_arm: dict[str, Interval] = {
        key: mean_ci([rare_recall(r, rare) for r in arm.runs], confidence) for key, arm in arms.items()
    }
    gain = None
    if "b" in arms and "c" in arms:
        gain = paired_gain(
            [rare_recall(r, rare) for r in arms["c"].runs], [rare_recall(r, rare) for r in arms["b"].runs], confidence
        )
    return {
        "rare_classes": [classes[c] for c in rare],
        "rare_recall_test": {key: vars(interval) for key, interval in per_arm.items()},
        "gain_rare_recall_test": None if gain is None else vars(gain),
    }
