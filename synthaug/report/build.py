"""The augmentation report: does the synthetic set help a classifier beyond classic augmentation? Trains the arms,
measures CAS and reaches the verdict into one `AugmentationReport`; nothing is written here."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from synthaug.core.errors import InvalidInput
from synthaug.report.arm_cache import ArmCache
from synthaug.report.arms import ARMS, ArmSummary, SeedRun, run_arms, summarize_arm
from synthaug.report.baseline import choose_baseline, not_measurable_verdict
from synthaug.report.cas import report_cas
from synthaug.report.choice import choose_synthetic, split_val
from synthaug.report.classes import missing_class_warnings
from synthaug.report.data import ReportConfig, ReportData, rare_classes
from synthaug.report.stats import Interval, paired_gain
from synthaug.report.tail import tail_summary
from synthaug.report.verdict import decide, sanity_warnings
from synthaug.synthetic.filters import LOW_CONFIDENCE, MEMORIZED


@dataclass
class AugmentationReport:
    """The verdict and everything behind it; `to_dict` is what `report.json` holds."""

    labeled: bool
    recommended: bool
    verdict: str
    classes: tuple[str, ...]
    arms: dict[str, ArmSummary] = field(default_factory=dict)
    gain_test: Interval | None = None
    gain_val: Interval | None = None
    cas: dict[str, float | int | str] | None = None
    baseline: dict[str, Any] | None = None
    synthetic_choice: dict[str, Any] | None = None
    metric: str = "accuracy"
    tail: dict[str, Any] = field(default_factory=dict)
    synthetic: dict[str, Any] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    measured: list[str] = field(default_factory=list)
    not_measured: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    test_source: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (intervals as {mean, low, high, n, confidence})."""
        return _jsonable(asdict(self))

    def arm_table(self) -> list[dict[str, Any]]:
        """One row per arm: name, test mean ± CI, val mean ± CI, seeds."""
        return [
            {
                "arm": f"({key}) {arm.name}",
                "test_accuracy": arm.test.percent(),
                "val_accuracy": arm.val.percent(),
                "seeds": arm.test.n,
            }
            for key, arm in self.arms.items()
        ]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def synthetic_summary(manifest: pd.DataFrame | None) -> dict[str, Any]:
    """Counts and rates of the synthetic set's filters from its manifest: generated, accepted, rejected per reason,
    memorization rate and confidence rejection rate (shares of all generated candidates)."""
    if manifest is None or not len(manifest):
        return {
            "generated": 0,
            "accepted": 0,
            "rejected": {},
            "memorization_rate": None,
            "confidence_reject_rate": None,
        }
    generated = len(manifest)
    rejected = manifest.loc[~manifest["accepted"].astype(bool), "reject_reason"].fillna("unknown")
    by_reason = {str(k): int(v) for k, v in rejected.value_counts().sort_index().items()}
    out: dict[str, Any] = {
        "generated": generated,
        "accepted": int(manifest["accepted"].astype(bool).sum()),
        "rejected": by_reason,
        "memorization_rate": by_reason.get(MEMORIZED, 0) / generated,
        "confidence_reject_rate": by_reason.get(LOW_CONFIDENCE, 0) / generated,
    }
    if "checkpoint_version" in manifest and len(manifest):
        out["checkpoint_version"] = str(manifest["checkpoint_version"].iloc[0])
    return out


def build_report(
    data: ReportData,
    config: ReportConfig,
    *,
    manifest: pd.DataFrame | None = None,
    runs: Sequence[SeedRun] | None = None,
    progress: Callable[[str], None] | None = None,
    excluded: Mapping[str, int] | None = None,
    stored_cas: Mapping[str, float | int | str] | None = None,
    workers: int = 1,
    arm_runs: Path | None = None,
) -> AugmentationReport:
    """Train the arms (unless `runs` are given), take CAS from `stored_cas` (`report.cas.stored_cas`) or measure
    it, and reach the verdict; nothing is written. `workers` > 1 trains that many models side by side (`run_arms`).
    `excluded`: classes left out of generation (name -> train images), from the synthetic set's meta. `arm_runs`:
    the folder where runs of arms (a) and (b) are kept for later reports and read back from earlier ones
    (`report.arm_cache`), unless `config.reuse_baseline_runs` is False."""
    start = time.monotonic()
    if config.held_out and data.labeled and data.val_select is None:
        data = split_val(data)
    base = {
        "classes": tuple(data.classes),
        "synthetic": {**synthetic_summary(manifest), "excluded_classes": dict(excluded or {})},
        "sizes": data.sizes(),
        "config": asdict(config),
        "test_source": data.test_source,
    }
    if not data.labeled:
        short = [part for part in ("train", "val", "test") if base["sizes"][part] < 2]
        if len(data.classes) < 2:
            why, need = "Without labels there are no arms, no gain and no CAS", "labels"
        else:
            why = (
                f"The {' and '.join(short)} split(s) have fewer than 2 labeled images: rematerialize "
                "training_tensors with a nonzero ratio for them (the verdict needs val, the figures need test)"
            )
            need = f"labeled {' and '.join(short)} images"
        return AugmentationReport(
            labeled=False,
            recommended=False,
            verdict=(
                "NOT RECOMMENDED (not measurable): the reference classifier needs labeled images of at least 2 classes "
                f"in the train, val and test splits; this dataset has {len(data.classes)} class(es) and "
                f"{base['sizes']['train']} labeled train, {base['sizes']['val']} val and {base['sizes']['test']} "
                f"test images. {why}: decide by looking at the samples and the filter rates."
            ),
            measured=["synthetic set size", "filter rejection rates (memorization, confidence)"],
            not_measured=[
                f"arm accuracies (a)/(b)/(c) and their CIs: need {need}",
                f"gain (c) − (b): needs {need}",
                f"CAS: needs {need}",
                f"per-class accuracy: needs {need}",
            ],
            seconds=time.monotonic() - start,
            **base,
        )
    if runs is None:
        runs = run_arms(data, config, progress, workers, ArmCache(arm_runs if config.reuse_baseline_runs else None))
    runs = list(runs)
    choice = choose_baseline(runs, config.baseline_tolerance, config.confidence)
    kept = [r for r in runs if r.arm != "b" or (r.classic_share, r.online) == (choice.classic_share, choice.online)]
    synthetic_choice = choose_synthetic(kept, data, config.confidence) if config.held_out else None
    if synthetic_choice is not None:
        chosen = (synthetic_choice.weight, synthetic_choice.per_batch)
        kept = [r for r in kept if r.arm != "c" or (r.synthetic_weight, r.synthetic_per_batch) == chosen]
    arms = {
        key: summarize_arm(key, [r for r in kept if r.arm == key], data.classes, config.confidence)
        for key in ARMS
        if any(r.arm == key for r in kept)
    }
    gain_val = gain_test = None
    not_measured: list[str] = []
    if "c" in arms and "b" in arms and (choice is None or choice.sound):
        b_runs, c_runs = arms["b"].runs, arms["c"].runs
        if [r.seed for r in b_runs] != [r.seed for r in c_runs]:
            raise InvalidInput("arms b and c must be trained with the same seeds to pair them")
        gain_val = paired_gain([r.val_accuracy for r in c_runs], [r.val_accuracy for r in b_runs], config.confidence)
        gain_test = paired_gain([r.test_accuracy for r in c_runs], [r.test_accuracy for r in b_runs], config.confidence)
    elif choice is not None and not choice.sound:
        not_measured.append("arm (c) and the gain (c) − (b): the baseline (b) is below (a) on val")
    else:
        not_measured.append("arm (c) and the gain (c) − (b): the synthetic set has no accepted labeled images")
    cas, cas_missing = report_cas(data, config, stored_cas, progress)
    if cas_missing is not None:
        not_measured.append(cas_missing)
    recommended, verdict = decide(gain_val, gain_test, config.require_val_ci)
    steps = config.steps_for(len(data.train[0]))
    if choice is not None and not choice.sound:
        verdict = not_measurable_verdict(choice, steps)
    elif gain_val is None:
        filters = base["synthetic"]
        verdict = (
            f"NOT RECOMMENDED: the synthetic set has no accepted labeled images ({filters['accepted']} accepted of "
            f"{filters['generated']} generated; rejected: {filters['rejected'] or 'none'}), so arm (c) could not be "
            "trained and there is no evidence that it helps. Train the GAN longer or loosen the synthetic_images "
            "filters, then rematerialize synthetic_images."
        )
    warnings = sanity_warnings(gain_test) + missing_class_warnings(
        data.classes, data.synthetic[1], manifest, base["synthetic"]["excluded_classes"]
    )
    balanced = config.balanced_for(data.train[1], len(data.classes))
    tail = tail_summary(arms, rare_classes(data.train[1], len(data.classes)), data.classes, config.confidence)
    if synthetic_choice is not None:
        verdict = f"{verdict} {synthetic_choice.sentence()}"
    if balanced:
        verdict = f"{verdict} {_balanced_note(tail)}"
    if warnings:
        verdict = f"{verdict} Warning: {' '.join(warnings)}"
    return AugmentationReport(
        labeled=True,
        recommended=recommended,
        verdict=verdict,
        warnings=warnings,
        arms=arms,
        gain_test=gain_test,
        gain_val=gain_val,
        cas=cas,
        baseline=None if choice is None else choice.to_dict(),
        synthetic_choice=None if synthetic_choice is None else synthetic_choice.to_dict(),
        metric="balanced accuracy" if balanced else "accuracy",
        tail=tail,
        measured=[f"arms {', '.join(arms)} over {config.seeds} seeds", "per-class test accuracy"]
        + (["paired gain (c) − (b) on val and test"] if gain_val is not None else [])
        + (["CAS"] if cas is not None else []),
        not_measured=not_measured,
        seconds=time.monotonic() - start,
        **base,
    )


def _balanced_note(tail: dict[str, Any]) -> str:
    """How a long-tailed report was scored, and the rare classes' recall gain when there is one."""
    note = "Every arm sampled classes equally and was scored by balanced accuracy (mean per-class recall)"
    if tail:
        note += f"; rare classes: {', '.join(tail['rare_classes'])}"
        gain = tail["gain_rare_recall_test"]
        if gain is not None:
            half = "" if gain["high"] is None else f" ± {100 * (gain['high'] - gain['mean']):.2f}"
            note += f", their test recall (c) − (b): {100 * gain['mean']:+.2f}{half} points"
    return note + "."
