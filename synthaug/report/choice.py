"""Arm (c)'s synthetic weight and images per batch chosen without selection bias: with several candidates, val is
split into two fixed stratified halves; every choice (checkpoints, the classic share, the candidate) is made on
half 1 and the gain and verdict are measured on half 2 only, so the winner's luck on half 1 does not flatter it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from synthaug.core.errors import InvalidInput
from synthaug.report.data import ReportData
from synthaug.report.stats import Interval, mean_ci

if TYPE_CHECKING:
    from synthaug.report.arms import SeedRun


def split_val(data: ReportData, seed: int = 0) -> ReportData:
    """`data` with `val_select` = half 1 of val and `val` = half 2: each class's images shuffled with a fixed seed,
    then all of them, class after class, dealt alternately, so both halves keep the class mix and differ by at most
    one image in size (the same halves for every seed and arm)."""
    x, y = data.val
    generator = torch.Generator().manual_seed(seed)
    shuffled = []
    for c in torch.unique(y).tolist():
        members = torch.nonzero(y == c).flatten()
        shuffled.append(members[torch.randperm(len(members), generator=generator)])
    dealt = torch.cat(shuffled)
    one, two = dealt[0::2].sort().values, dealt[1::2].sort().values
    if len(two) < 2:
        raise InvalidInput(
            f"val has {len(x)} labeled images, too few to split into a half that chooses arm (c)'s candidate and a "
            "half that measures it: give synthetic_weights and synthetic_shares one value each, or a larger val split"
        )
    return dataclasses.replace(data, val=(x[two], y[two]), val_select=(x[one], y[one]))


@dataclass(frozen=True)
class SyntheticChoice:
    """Which (synthetic weight, images per batch) arm (c) keeps, every candidate's mean accuracy on the choosing half
    of val, and both halves' sizes."""

    weight: float
    per_batch: int
    candidates: dict[tuple[float, int], Interval]
    select_size: int
    report_size: int

    def rule(self) -> str:
        """The rule in words, as the report states it."""
        return (
            f"arm (c) was trained with {len(self.candidates)} (synthetic weight, images per batch) candidates; the one "
            f"with the best mean accuracy on half 1 of val ({self.select_size} images, where every checkpoint and "
            f"share was also chosen) was kept, and its gain and the verdict are measured on half 2 "
            f"({self.report_size} images) only"
        )

    def sentence(self) -> str:
        """One sentence for the verdict: what was chosen and where the verdict was measured."""
        return (
            f"Arm (c) used synthetic weight {self.weight:g} with {self.per_batch} synthetic images per batch, the best "
            f"of {len(self.candidates)} candidates on half 1 of val ({self.select_size} images); the val gain and "
            f"verdict are measured on the other half ({self.report_size} images)."
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (intervals as mean/low/high/n)."""
        return {
            "synthetic_weight": self.weight,
            "synthetic_per_batch": self.per_batch,
            "candidates": [
                {"synthetic_weight": w, "synthetic_per_batch": s, "val_select": vars(val)}
                for (w, s), val in self.candidates.items()
            ],
            "val_select_size": self.select_size,
            "val_report_size": self.report_size,
            "rule": self.rule(),
        }


def choose_synthetic(runs: Sequence[SeedRun], data: ReportData, confidence: float) -> SyntheticChoice | None:
    """Pick arm (c)'s candidate by mean accuracy on the choosing half of val (ties: the first candidate trained);
    None without (c) runs."""
    by_candidate: dict[tuple[float, int], list[SeedRun]] = {}
    for run in runs:
        if run.arm == "c":
            by_candidate.setdefault((run.synthetic_weight, run.synthetic_per_batch), []).append(run)
    if not by_candidate:
        return None
    candidates = {
        key: mean_ci([r.select_val for r in sorted(group, key=lambda r: r.seed)], confidence)
        for key, group in by_candidate.items()
    }
    order = list(candidates)
    weight, per_batch = max(order, key=lambda key: (candidates[key].mean, -order.index(key)))
    select = data.val_select if data.val_select is not None else data.val
    return SyntheticChoice(weight, per_batch, candidates, len(select[0]), len(data.val[0]))
