"""The fair baseline: arm (b)'s classic-augmentation strength is chosen on val before arm (c) is trained, and the
comparison is declared not measurable when even the best (b) stays below plain real data (a).

The rule is fixed before any result: (b) is trained at every `classic_shares` value (the share of the offline
albumentations copies pooled with the real train split; online flips and shifts always apply), the share with the
highest mean val accuracy is kept, and the baseline is sound when that mean is at least (a)'s minus
`baseline_tolerance`. Choosing the best of several baselines on val favours (b), never (c)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from synthaug.report.stats import Interval, mean_ci, paired_gain

if TYPE_CHECKING:
    from synthaug.report.arms import SeedRun


@dataclass(frozen=True)
class BaselineChoice:
    """Which classic-augmentation share arm (b) uses, every candidate's val accuracy, and whether (b) is sound."""

    classic_share: float
    candidates: dict[float, Interval]
    gap: Interval | None
    tolerance: float
    sound: bool

    def rule(self) -> str:
        """The rule in words, as the report states it."""
        shares = ", ".join(f"{share:g}" for share in self.candidates)
        return (
            f"arm (b) was trained with {shares} of the classic copies pooled with the real images; the share with the "
            f"best mean val accuracy was kept before arm (c) was trained, and the baseline counts as sound when its "
            f"val accuracy is at least arm (a)'s minus {100 * self.tolerance:.2f} points"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (intervals as mean/low/high/n)."""
        return {
            "classic_share": self.classic_share,
            "candidates": [{"classic_share": share, "val": vars(val)} for share, val in self.candidates.items()],
            "gap_b_minus_a_val": None if self.gap is None else vars(self.gap),
            "tolerance": self.tolerance,
            "sound": self.sound,
            "rule": self.rule(),
        }


def choose_baseline(runs: Sequence[SeedRun], tolerance: float, confidence: float) -> BaselineChoice | None:
    """Pick arm (b)'s share from its runs by mean val accuracy (on the choosing half when val is split; ties: the
    larger share, the usual recipe) and check it against arm (a); None without (b) runs."""
    by_share: dict[float, list[SeedRun]] = {}
    for run in runs:
        if run.arm == "b":
            by_share.setdefault(run.classic_share, []).append(run)
    if not by_share:
        return None
    candidates = {
        share: mean_ci([r.select_val for r in sorted(group, key=lambda r: r.seed)], confidence)
        for share, group in sorted(by_share.items(), reverse=True)
    }
    chosen = max(candidates, key=lambda share: (candidates[share].mean, share))
    a_runs = sorted((r for r in runs if r.arm == "a"), key=lambda r: r.seed)
    b_runs = sorted(by_share[chosen], key=lambda r: r.seed)
    gap = None
    if a_runs and [r.seed for r in a_runs] == [r.seed for r in b_runs]:
        gap = paired_gain([r.select_val for r in b_runs], [r.select_val for r in a_runs], confidence)
    sound = gap is None or gap.mean >= -tolerance
    return BaselineChoice(chosen, candidates, gap, tolerance, sound)


def not_measurable_verdict(choice: BaselineChoice, steps: int) -> str:
    """The verdict when even the best (b) is below (a): no recommendation either way, and what to change."""
    return (
        f"NOT MEASURABLE: the baseline is undertrained. At {steps} steps per model the best real + classic "
        f"augmentation (share {choice.classic_share:g} of the classic copies) scored {choice.gap.points()} points "
        f"against real alone on val, below the {100 * choice.tolerance:.2f}-point tolerance, so a gain over it would "
        "mean nothing and arm (c) was not trained. Raise the report's steps (or epochs/min_steps), or lower the "
        "augmentation strength of training_tensors, then rematerialize augmentation_report."
    )
