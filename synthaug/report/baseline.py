"""The fair baseline: arm (b)'s classic-augmentation strength is chosen on val before arm (c) is trained, and the
comparison is declared not measurable when even the best (b) stays below plain real data (a).

The rule is fixed before any result: (b) is trained at every `classic_shares` value (the share of the offline
albumentations copies pooled with the real train split, with online flips and shifts), and, with
`classic_optional`, "no classic augmentation at all" is one more candidate (arm (a)'s recipe and runs, nothing
retrained): a practitioner drops augmentation that does not help. The recipe with the highest mean val accuracy is
kept, and the baseline is sound when that mean is at least (a)'s minus `baseline_tolerance` (always, when no
augmentation is a candidate). Choosing the best of several baselines on val favours (b), never (c)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from synthaug.report.stats import Interval, mean_ci, paired_gain

if TYPE_CHECKING:
    from synthaug.report.arms import SeedRun


Recipe = tuple[float, bool]  # the share of the classic copies, and whether online flips and shifts apply


def recipe_name(share: float, online: bool) -> str:
    """A recipe in words: `share 0.5 of the classic copies` or `no classic augmentation`."""
    if not online and share == 0:
        return "no classic augmentation"
    return f"share {share:g} of the classic copies" + ("" if online else ", no online flips or shifts")


@dataclass(frozen=True)
class BaselineChoice:
    """Which classic-augmentation recipe arm (b) uses, every candidate's val accuracy, and whether (b) is sound."""

    classic_share: float
    candidates: dict[Recipe, Interval]
    gap: Interval | None
    tolerance: float
    sound: bool
    online: bool = True

    @property
    def name(self) -> str:
        """The chosen recipe in words."""
        return recipe_name(self.classic_share, self.online)

    def rule(self) -> str:
        """The rule in words, as the report states it."""
        names = "; ".join(recipe_name(*recipe) for recipe in self.candidates)
        return (
            f"arm (b) candidates: {names}; the one with the best mean val accuracy was kept before arm (c) was "
            f"trained, and the baseline counts as sound when its val accuracy is at least arm (a)'s minus "
            f"{100 * self.tolerance:.2f} points"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (intervals as mean/low/high/n)."""
        return {
            "classic_share": self.classic_share,
            "online_augmentation": self.online,
            "recipe": self.name,
            "candidates": [
                {
                    "classic_share": share,
                    "online_augmentation": online,
                    "recipe": recipe_name(share, online),
                    "val": vars(val),
                }
                for (share, online), val in self.candidates.items()
            ],
            "gap_b_minus_a_val": None if self.gap is None else vars(self.gap),
            "tolerance": self.tolerance,
            "sound": self.sound,
            "rule": self.rule(),
        }


def choose_baseline(runs: Sequence[SeedRun], tolerance: float, confidence: float) -> BaselineChoice | None:
    """Pick arm (b)'s recipe from its runs by mean val accuracy (on the choosing half when val is split; ties: online
    augmentation and the larger share, the usual recipe) and check it against arm (a); None without (b) runs."""
    by_recipe: dict[Recipe, list[SeedRun]] = {}
    for run in runs:
        if run.arm == "b":
            by_recipe.setdefault((run.classic_share, run.online), []).append(run)
    if not by_recipe:
        return None
    candidates = {
        recipe: mean_ci([r.select_val for r in sorted(group, key=lambda r: r.seed)], confidence)
        for recipe, group in sorted(by_recipe.items(), key=lambda item: (item[0][1], item[0][0]), reverse=True)
    }
    share, online = max(candidates, key=lambda recipe: (candidates[recipe].mean, recipe[1], recipe[0]))
    a_runs = sorted((r for r in runs if r.arm == "a"), key=lambda r: r.seed)
    b_runs = sorted(by_recipe[share, online], key=lambda r: r.seed)
    gap = None
    if a_runs and [r.seed for r in a_runs] == [r.seed for r in b_runs]:
        gap = paired_gain([r.select_val for r in b_runs], [r.select_val for r in a_runs], confidence)
    sound = gap is None or gap.mean >= -tolerance
    return BaselineChoice(share, candidates, gap, tolerance, sound, online)


def not_measurable_verdict(choice: BaselineChoice, steps: int) -> str:
    """The verdict when even the best (b) is below (a): no recommendation either way, and what to change."""
    return (
        f"NOT MEASURABLE: the baseline is undertrained. At {steps} steps per model the best real + classic "
        f"augmentation ({choice.name}) scored {choice.gap.points()} points "
        f"against real alone on val, below the {100 * choice.tolerance:.2f}-point tolerance, so a gain over it would "
        "mean nothing and arm (c) was not trained. Raise the report's steps (or epochs/min_steps), or lower the "
        "augmentation strength of training_tensors, then rematerialize augmentation_report."
    )
