"""The augmentation report: does the synthetic set help a classifier beyond classic augmentation? The reference
classifier is trained with several seeds in three arms that differ only in their data, and the synthetic set is
`recommended` only when it wins on the validation split; the test split is measured once per model and reported,
never used to decide.

Arms (same architecture, same optimizer-step budget, same seeds, best checkpoint chosen on val):

* `a` real: the original real train split, no augmentation at all (no online flip or shift);
* `b` real + classic: the train split plus its albumentations copies (`train_aug`), and online flip/shift;
* `c` real + classic + synthetic: exactly `b`'s batches (same init, order and online augmentation for a seed),
  each with `synthetic_per_batch` accepted synthetic images added, their loss weighted by `synthetic_weight`.

Confidence intervals are Student t intervals over seeds; the gain (c) − (b) is paired by seed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.ticker import PercentFormatter
from scipy.stats import t as student_t

from synthaug.core.atomic import atomic_write_bytes
from synthaug.core.layout import DataLayout
from synthaug.core.plots import ARM_COLOURS, FONT_SIZE, figure_png, lighter, message_png, new_figure
from synthaug.models.gan.sampling import sample_grid_png
from synthaug.models.metrics.cas import classification_accuracy_score
from synthaug.models.metrics.classifier import ClassifierConfig, as_float, logits, train_classifier
from synthaug.synthetic.generate import LOW_CONFIDENCE, MEMORIZED
from synthaug.tensors.build import UNLABELED, current_tensors
from synthaug.tensors.norm_stats import NormStats

Images = tuple[torch.Tensor, torch.Tensor]
ARMS = {"a": "real", "b": "real + classic", "c": "real + classic + synthetic"}
REPORT_NAME = "report.json"
ARMS_PLOT = "arms.png"
PER_CLASS_PLOT = "per_class.png"
SAMPLES_PLOT = "real_vs_synthetic.png"


# --------------------------------------------------------------------------------------------------
# statistics


def t_critical(df: int, confidence: float = 0.95) -> float:
    """Two-sided Student t critical value: P(|T| <= t) = confidence for T with `df` degrees of freedom (scipy's
    quantile function, so the interval half-widths match the statistics tables)."""
    if df < 1:
        raise ValueError(f"a t interval needs at least 1 degree of freedom, got {df}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(student_t.ppf((1 + confidence) / 2, df))


@dataclass(frozen=True)
class Interval:
    """Mean of `n` values with a two-sided Student t confidence interval (low/high None when n < 2)."""

    mean: float
    low: float | None
    high: float | None
    n: int
    confidence: float = 0.95

    @property
    def half_width(self) -> float | None:
        """Half the interval's width (None when it could not be computed)."""
        return None if self.high is None else self.high - self.mean

    def excludes_zero_above(self) -> bool:
        """True when the whole interval lies above zero."""
        return self.low is not None and self.low > 0

    def points(self) -> str:
        """`+1.23 ± 0.45` in accuracy points (×100), or `+1.23 (no CI)`."""
        half = self.half_width
        return f"{100 * self.mean:+.2f}" + (f" ± {100 * half:.2f}" if half is not None else " (no CI)")

    def percent(self) -> str:
        """`83.40% ± 0.51` (accuracy in percent, half-width in points)."""
        half = self.half_width
        return f"{100 * self.mean:.2f}%" + (f" ± {100 * half:.2f}" if half is not None else "")


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean and Student t interval: mean ± t(n-1) · s / sqrt(n), with s the sample standard deviation."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        raise ValueError("a confidence interval needs at least one value")
    mean = float(v.mean())
    if len(v) < 2:
        return Interval(mean, None, None, 1, confidence)
    half = t_critical(len(v) - 1, confidence) * float(v.std(ddof=1)) / math.sqrt(len(v))
    return Interval(mean, mean - half, mean + half, len(v), confidence)


def paired_gain(treated: Sequence[float], control: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean difference treated − control with a t interval over the per-seed differences (a paired interval)."""
    if len(treated) != len(control):
        raise ValueError(f"a paired gain needs one value per seed in both arms, got {len(treated)} and {len(control)}")
    return mean_ci(np.asarray(treated, np.float64) - np.asarray(control, np.float64), confidence)


# --------------------------------------------------------------------------------------------------
# configuration and inputs


@dataclass(frozen=True)
class ReportConfig:
    """How the arms are trained and how the verdict is reached; invalid values raise ValueError naming the field."""

    seeds: int = 3
    first_seed: int = 0
    steps: int | None = None
    epochs: float = 6.0
    min_steps: int = 200
    batch_size: int = 64
    width: int = 16
    lr: float = 5e-3
    evaluations: int = 8
    synthetic_per_batch: int = 32
    synthetic_weight: float = 0.3
    require_val_ci: bool = True
    cas: bool = True
    confidence: float = 0.95

    def __post_init__(self) -> None:
        for name, low in (("seeds", 2), ("min_steps", 1), ("batch_size", 2), ("width", 1), ("evaluations", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"report {name} must be an integer of at least {low}, got {value!r}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"report steps must be at least 1 (or None: from epochs), got {self.steps}")
        if self.epochs <= 0 or self.lr <= 0:
            raise ValueError(f"report epochs ({self.epochs}) and lr ({self.lr}) must be positive")
        if self.synthetic_per_batch < 0 or self.synthetic_weight < 0:
            raise ValueError(
                f"report synthetic_per_batch ({self.synthetic_per_batch}) and synthetic_weight "
                f"({self.synthetic_weight}) must not be negative"
            )
        if not 0 < self.confidence < 1:
            raise ValueError(f"report confidence must be in (0, 1), got {self.confidence}")

    def steps_for(self, num_train: int) -> int:
        """Optimizer steps of every arm: `steps`, or `epochs` passes over the original real train split (at least
        `min_steps`). The same for all arms, so more data never means more training."""
        if self.steps is not None:
            return self.steps
        return max(self.min_steps, math.ceil(self.epochs * num_train / self.batch_size))


@dataclass(frozen=True)
class ReportData:
    """Everything the arms train and test on: uint8 N×C×H×W images with int64 label indices into `classes`.

    `train` is the original real train split, `train_aug` its classic-augmentation copies, `synthetic` the
    accepted synthetic images; `test` may come from anywhere (the pipeline's test split, or an official one)."""

    classes: tuple[str, ...]
    train: Images
    train_aug: Images
    val: Images
    test: Images
    synthetic: Images
    flip: bool = True
    test_source: str = "the pipeline's real test split"

    @property
    def labeled(self) -> bool:
        """True when there are at least 2 classes and labeled train, val and test images to train and measure."""
        return len(self.classes) >= 2 and all(len(part[0]) >= 2 for part in (self.train, self.val, self.test))

    def sizes(self) -> dict[str, int]:
        """Images per part."""
        parts = ("train", "train_aug", "val", "test", "synthetic")
        return {name: int(len(getattr(self, name)[0])) for name in parts}


def _stream(layout: DataLayout, stats: NormStats, stream: str) -> tuple[np.ndarray, np.ndarray]:
    """Every labeled image of one tensor stream over all batches (uint8) and its global label index."""
    xs, ys = [], []
    shape = (stats.channels, stats.size, stats.size)
    for batch_id in stats.batches:
        tensor_set = current_tensors(layout, batch_id)
        if tensor_set is None:
            raise FileNotFoundError(f"batch {batch_id} has no training tensors: materialize training_tensors")
        if tensor_set.shape != shape:
            raise ValueError(
                f"batch {batch_id} has tensors of shape {tensor_set.shape}, the statistics expect {shape}: "
                "rematerialize normalization_stats"
            )
        lut = np.asarray([stats.class_to_index.get(c, UNLABELED) for c in tensor_set.classes] + [UNLABELED])
        for x_path, y_path, rows in tensor_set.shards(stream):
            if rows:
                y = lut[np.load(y_path).astype(np.int64)]
                keep = y >= 0
                xs.append(np.asarray(np.load(x_path, mmap_mode="r"))[keep])
                ys.append(y[keep])
    if not xs:
        return np.empty((0, *shape), np.uint8), np.empty(0, np.int64)
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64)


def _flip_allowed(layout: DataLayout, stats: NormStats) -> bool:
    """Online horizontal flips only when the pipeline's own augmentation flips (some classes are not symmetric)."""
    for batch_id in stats.batches:
        tensor_set = current_tensors(layout, batch_id)
        if tensor_set is not None:
            return float(tensor_set.meta["config"]["policy"].get("hflip_p", 0.0)) > 0
    return True


def load_report_data(
    layout: DataLayout,
    stats: NormStats,
    synthetic: tuple[np.ndarray, np.ndarray],
    *,
    test: tuple[np.ndarray, np.ndarray] | None = None,
    test_source: str | None = None,
) -> ReportData:
    """The real train, train_aug, val (and, unless `test` is given, test) streams of every batch, with the
    accepted synthetic images (uint8 N×C×H×W, label indices into `stats.classes`; unlabeled ones are dropped)."""
    shape = (stats.channels, stats.size, stats.size)
    syn_x, syn_y = np.asarray(synthetic[0]), np.asarray(synthetic[1]).astype(np.int64)
    if len(syn_x) and tuple(syn_x.shape[1:]) != shape:
        raise ValueError(
            f"synthetic images are {tuple(syn_x.shape[1:])}, the training tensors {shape}: "
            "rematerialize synthetic_images from the current gan_checkpoint"
        )
    if len(syn_y) and syn_y.max(initial=-1) >= len(stats.classes):
        raise ValueError(
            f"synthetic labels go up to {int(syn_y.max())} but normalization_stats has {len(stats.classes)} classes: "
            "rematerialize synthetic_images"
        )
    keep = syn_y >= 0
    parts = {s: _stream(layout, stats, s) for s in ("train", "train_aug", "val")}
    parts["test"] = test if test is not None else _stream(layout, stats, "test")

    def tensors(pair: tuple[np.ndarray, np.ndarray]) -> Images:
        return torch.from_numpy(np.ascontiguousarray(pair[0])), torch.from_numpy(np.asarray(pair[1], np.int64))

    return ReportData(
        classes=tuple(stats.classes),
        train=tensors(parts["train"]),
        train_aug=tensors(parts["train_aug"]),
        val=tensors(parts["val"]),
        test=tensors(parts["test"]),
        synthetic=tensors((syn_x[keep], syn_y[keep])),
        flip=_flip_allowed(layout, stats),
        test_source=test_source or "the pipeline's real test split",
    )


# --------------------------------------------------------------------------------------------------
# training the arms


@dataclass(frozen=True)
class SeedRun:
    """One trained model: its arm and seed, val accuracy of the chosen checkpoint, its test accuracy (overall and
    per class, None for a class without test images), the step it was chosen at and the time it took."""

    arm: str
    seed: int
    val_accuracy: float
    test_accuracy: float
    per_class_test: list[float | None]
    best_step: int | None
    steps: int
    seconds: float


def _arm_inputs(data: ReportData, arm: str) -> tuple[Images, Images | None]:
    """(training images, extra images mixed into each batch) of an arm."""
    if arm == "a":
        return data.train, None
    pooled = (torch.cat([data.train[0], data.train_aug[0]]), torch.cat([data.train[1], data.train_aug[1]]))
    return pooled, (data.synthetic if arm == "c" else None)


def classifier_config(data: ReportData, config: ReportConfig, arm: str, seed: int) -> ClassifierConfig:
    """The reference classifier of one arm and seed: only the online augmentation and the synthetic mixing differ
    between arms, never the architecture, the step budget, the learning rate or the seed."""
    steps = config.steps_for(len(data.train[0]))
    channels, size = data.train[0].shape[1], data.train[0].shape[2]
    return ClassifierConfig(
        channels=channels,
        resolution=size,
        num_classes=len(data.classes),
        width=config.width,
        batch_size=config.batch_size,
        lr=config.lr,
        flip=data.flip and arm != "a",
        shift=0 if arm == "a" else 2,
        seed=seed,
        steps=steps,
        val_every=max(1, steps // config.evaluations),
        extra_per_batch=config.synthetic_per_batch if arm == "c" else 0,
        extra_weight=config.synthetic_weight,
    )


def _per_class(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[float | None]:
    """Accuracy within each true class (None where the class has no images)."""
    out: list[float | None] = []
    for c in range(num_classes):
        members = labels == c
        out.append(float((predicted[members] == c).float().mean()) if members.any() else None)
    return out


def train_arm(data: ReportData, config: ReportConfig, arm: str, seed: int) -> SeedRun:
    """Train one arm with one seed, choose its checkpoint on val, then measure it once on test (NaN, and None per
    class, when the data has no test split: a val-only choice such as the step budget still works)."""
    (x, y), extra = _arm_inputs(data, arm)
    if arm == "c" and config.synthetic_per_batch == 0:
        x, y = torch.cat([x, data.synthetic[0]]), torch.cat([y, data.synthetic[1]])
        extra = None
    clf = classifier_config(data, config, arm, seed)
    result = train_classifier(x, y, clf, val=data.val, extra=extra)
    test_accuracy, per_class = math.nan, [None] * len(data.classes)
    if len(data.test[0]):
        predicted = logits(result.model, data.test[0]).argmax(1)
        test_accuracy = float((predicted == data.test[1]).float().mean())
        per_class = _per_class(predicted, data.test[1], len(data.classes))
    return SeedRun(
        arm=arm,
        seed=seed,
        val_accuracy=float(result.val_accuracy),
        test_accuracy=test_accuracy,
        per_class_test=per_class,
        best_step=result.best_step,
        steps=result.steps,
        seconds=result.seconds,
    )


def run_arms(data: ReportData, config: ReportConfig, progress: Callable[[str], None] | None = None) -> list[SeedRun]:
    """Every arm for every seed (seed-major, so a partial log covers all arms); `progress` gets one line per model
    with the time so far and an estimate of the time left."""
    arms = [a for a in ARMS if a != "c" or len(data.synthetic[0])]
    seeds = [config.first_seed + i for i in range(config.seeds)]
    total, runs, start = len(arms) * len(seeds), [], time.monotonic()
    for seed in seeds:
        for arm in arms:
            run = train_arm(data, config, arm, seed)
            runs.append(run)
            if progress is not None:
                elapsed = time.monotonic() - start
                left = elapsed / len(runs) * (total - len(runs))
                progress(
                    f"arm {arm} ({ARMS[arm]}) seed {seed}: val {run.val_accuracy:.4f}, test {run.test_accuracy:.4f} "
                    f"(best step {run.best_step}/{run.steps}); {len(runs)}/{total} models, {elapsed:.0f} s so far, "
                    f"~{left:.0f} s left"
                )
    return runs


# --------------------------------------------------------------------------------------------------
# the report


@dataclass(frozen=True)
class ArmSummary:
    """One arm over its seeds: test and val accuracy with CIs, per-class test accuracy (mean over seeds)."""

    key: str
    name: str
    test: Interval
    val: Interval
    per_class_test: dict[str, float | None]
    runs: list[SeedRun]


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
    cas: dict[str, float | int] | None = None
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


def summarize_arm(key: str, runs: Sequence[SeedRun], classes: Sequence[str], confidence: float) -> ArmSummary:
    """Mean ± CI over the seeds of one arm, and the mean per-class test accuracy."""
    runs = sorted(runs, key=lambda r: r.seed)
    per_class: dict[str, float | None] = {}
    for c, name in enumerate(classes):
        values = [r.per_class_test[c] for r in runs if r.per_class_test[c] is not None]
        per_class[name] = float(np.mean(values)) if values else None
    return ArmSummary(
        key=key,
        name=ARMS[key],
        test=mean_ci([r.test_accuracy for r in runs], confidence),
        val=mean_ci([r.val_accuracy for r in runs], confidence),
        per_class_test=per_class,
        runs=list(runs),
    )


def decide(gain_val: Interval | None, gain_test: Interval | None, require_val_ci: bool) -> tuple[bool, str]:
    """`recommended` and the verdict in words, from the paired val gain (c) − (b) only; the test gain is quoted,
    never used: a set that loses on val but wins on test is not recommended."""
    if gain_val is None:
        return False, "NOT RECOMMENDED: arm (c) could not be trained, so there is no evidence that the set helps."
    val_text = f"{gain_val.points()} points on val"
    ci_text = (
        f"95% CI {100 * gain_val.low:+.2f} to {100 * gain_val.high:+.2f}"
        if gain_val.low is not None and gain_val.high is not None
        else "no CI"
    )
    test_text = f"; on the real test split the gain is {gain_test.points()} points" if gain_test is not None else ""
    seeds = f"{gain_val.n} paired seeds"
    if gain_val.mean <= 0:
        return False, (
            f"NOT RECOMMENDED: adding the synthetic set did not beat real + classic augmentation on the validation "
            f"split (gain {val_text}, {ci_text}, {seeds}){test_text}. The test split is reported, never used to "
            "decide."
        )
    if require_val_ci and not gain_val.excludes_zero_above():
        return False, (
            f"NOT RECOMMENDED: the synthetic set raised val accuracy on average ({val_text}) but the {ci_text} "
            f"over {seeds} includes zero, so the gain is not reliable{test_text}. More seeds or a larger val split "
            "could settle it."
        )
    caution = ""
    if gain_test is not None and gain_test.mean < 0:
        caution = " Caution: the test gain is negative; the val split may be too small to be representative."
    rule = "its 95% CI lies above zero" if require_val_ci else "its mean is above zero"
    return True, (
        f"RECOMMENDED: real + classic + synthetic beat real + classic on the validation split by {val_text} "
        f"({ci_text}, {seeds}; {rule}){test_text}.{caution}"
    )


LARGE_GAIN = 0.04  # synthetic data from a GAN on the same small set usually adds 0-3 points (see the field notes)


def sanity_warnings(arms: dict[str, ArmSummary], gain_test: Interval | None, steps: int) -> list[str]:
    """Signs that the comparison itself is weak: classic augmentation losing to plain data on val (an undertrained
    baseline), or a test gain larger than synthetic data plausibly gives (leakage or a weak baseline)."""
    warnings = []
    if "a" in arms and "b" in arms and arms["b"].val.mean < arms["a"].val.mean:
        gap = 100 * (arms["a"].val.mean - arms["b"].val.mean)
        warnings.append(
            f"real + classic scored {gap:.2f} points below real alone on val, so the baseline looks undertrained "
            f"at {steps} steps per model: raise steps (or epochs/min_steps) before trusting the gain."
        )
    if gain_test is not None and gain_test.mean > LARGE_GAIN:
        warnings.append(
            f"the test gain ({gain_test.points()} points) is above {100 * LARGE_GAIN:.0f} points, more than synthetic "
            "data usually adds: check for leakage between the synthetic and test images, or a weak baseline."
        )
    return warnings


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
) -> AugmentationReport:
    """Train the arms (unless `runs` are given), measure CAS, and reach the verdict; nothing is written."""
    start = time.monotonic()
    base = {
        "classes": tuple(data.classes),
        "synthetic": synthetic_summary(manifest),
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
    runs = list(runs) if runs is not None else run_arms(data, config, progress)
    arms = {
        key: summarize_arm(key, [r for r in runs if r.arm == key], data.classes, config.confidence)
        for key in ARMS
        if any(r.arm == key for r in runs)
    }
    gain_val = gain_test = None
    not_measured: list[str] = []
    if "c" in arms and "b" in arms:
        b_runs, c_runs = arms["b"].runs, arms["c"].runs
        if [r.seed for r in b_runs] != [r.seed for r in c_runs]:
            raise ValueError("arms b and c must be trained with the same seeds to pair them")
        gain_val = paired_gain([r.val_accuracy for r in c_runs], [r.val_accuracy for r in b_runs], config.confidence)
        gain_test = paired_gain([r.test_accuracy for r in c_runs], [r.test_accuracy for r in b_runs], config.confidence)
    else:
        not_measured.append("arm (c) and the gain (c) − (b): the synthetic set has no accepted labeled images")
    cas = None
    if config.cas and len(data.synthetic[0]) >= 2:
        if progress is not None:
            progress("CAS: training on synthetic images only, and on as many real ones")
        clf = classifier_config(data, config, "b", config.first_seed)
        cas_config = ClassifierConfig(**{**asdict(clf), "val_every": 0})
        cas = classification_accuracy_score(data.synthetic, data.train, data.test, cas_config).as_dict()
    else:
        not_measured.append("CAS: switched off" if not config.cas else "CAS: fewer than 2 synthetic images")
    recommended, verdict = decide(gain_val, gain_test, config.require_val_ci)
    if gain_val is None:
        filters = base["synthetic"]
        verdict = (
            f"NOT RECOMMENDED: the synthetic set has no accepted labeled images ({filters['accepted']} accepted of "
            f"{filters['generated']} generated; rejected: {filters['rejected'] or 'none'}), so arm (c) could not be "
            "trained and there is no evidence that it helps. Train the GAN longer or loosen the synthetic_images "
            "filters, then rematerialize synthetic_images."
        )
    warnings = sanity_warnings(arms, gain_test, config.steps_for(len(data.train[0])))
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
        measured=[f"arms {', '.join(arms)} over {config.seeds} seeds", "per-class test accuracy"]
        + (["paired gain (c) − (b) on val and test"] if gain_val is not None else [])
        + (["CAS"] if cas is not None else []),
        not_measured=not_measured,
        seconds=time.monotonic() - start,
        **base,
    )


# --------------------------------------------------------------------------------------------------
# pictures and output


def arms_plot_png(report: AugmentationReport, *, width: int = 560, row: int = 34) -> bytes:
    """Dot plot of each arm's mean test and val accuracy with its confidence interval as a bar; PNG bytes."""
    arms = list(report.arms.values())
    height = 24 + row * max(len(arms), 1) * 2 + 34
    if not arms:
        return message_png("no arms were trained (unlabeled data)", width, height)
    figure = new_figure(width, height)
    axes = figure.add_subplot()
    labels = []
    for arm in arms:
        for split, interval in (("test", arm.test), ("val", arm.val)):
            position = len(labels)
            labels.append(f"({arm.key}) {arm.name} [{split}]")
            colour = ARM_COLOURS[arm.key] if split == "test" else lighter(ARM_COLOURS[arm.key])
            error = None
            if interval.low is not None and interval.high is not None:
                error = [[interval.mean - interval.low], [interval.high - interval.mean]]
            axes.errorbar(
                [interval.mean], [position], xerr=error, fmt="o", color=colour, markersize=6, linewidth=3, capsize=5
            )
    values = [v for a in arms for i in (a.test, a.val) for v in (i.low, i.high, i.mean) if v is not None]
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.1, 0.005)
    axes.set_xlim(max(0.0, lo - pad), min(1.0, hi + pad))
    axes.set_yticks(range(len(labels)), labels, fontsize=FONT_SIZE)
    axes.set_ylim(len(labels) - 0.5, -0.5)
    axes.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=1))
    axes.tick_params(labelsize=FONT_SIZE)
    axes.grid(True, axis="x", color="0.9")
    confidence = 100 * arms[0].test.confidence
    axes.set_title(f"accuracy, mean and {confidence:g}% CI over seeds", fontsize=FONT_SIZE)
    return figure_png(figure)


def per_class_plot_png(report: AugmentationReport, *, bar: int = 9, width: int = 560) -> bytes:
    """Horizontal bars: per-class test accuracy (mean over seeds) of each arm; PNG bytes."""
    arms = list(report.arms.values())
    classes = list(report.classes)
    height = 70 + (bar * max(len(arms), 1) + 8) * max(len(classes), 1)
    if not arms:
        return message_png("no per-class accuracy without labels", width, height)
    figure = new_figure(width, height)
    axes = figure.add_subplot()
    thickness = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        rows = [(r, value) for r, name in enumerate(classes) if (value := arm.per_class_test.get(name)) is not None]
        positions = [r + (i - (len(arms) - 1) / 2) * thickness for r, _ in rows]
        values = [value for _, value in rows]
        bars = axes.barh(
            positions, values, height=thickness, color=ARM_COLOURS[arm.key], label=f"({arm.key}) {arm.name}"
        )
        axes.bar_label(bars, labels=[f"{100 * v:.0f}" for v in values], padding=2, fontsize=FONT_SIZE - 1)
    axes.set_yticks(range(len(classes)), [name[:18] for name in classes], fontsize=FONT_SIZE)
    axes.set_ylim(len(classes) - 0.5, -0.5)
    axes.set_xlim(0, 1.08)
    axes.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    axes.tick_params(labelsize=FONT_SIZE)
    axes.set_xlabel("test accuracy, mean over seeds", fontsize=FONT_SIZE)
    figure.legend(loc="outside upper center", ncols=len(arms), fontsize=FONT_SIZE, frameon=False)
    return figure_png(figure)


def samples_png(data: ReportData, per_class: int = 8) -> bytes | None:
    """One row per class: real train images, then accepted synthetic ones (None without synthetic images)."""
    if not len(data.synthetic[0]) or not len(data.train[0]):
        return None
    return sample_grid_png(
        as_float(data.synthetic[0]),
        data.synthetic[1],
        as_float(data.train[0]),
        data.train[1],
        list(data.classes),
        per_class=per_class,
        scale=2,
    )


@dataclass(frozen=True)
class WrittenReport:
    """Where the report went, and the PNG bytes of its plots (for the UI)."""

    path: Path
    report_json: Path
    arms_png: bytes
    per_class_png: bytes
    samples_png: bytes | None


def write_report(report: AugmentationReport, report_dir: Path, data: ReportData | None = None) -> WrittenReport:
    """Write the plots, then `report.json` last, each atomically, into `report_dir`."""
    report_dir = Path(report_dir)
    arms_png, per_class_png = arms_plot_png(report), per_class_plot_png(report)
    grid = samples_png(data) if data is not None else None
    atomic_write_bytes(report_dir / ARMS_PLOT, arms_png)
    atomic_write_bytes(report_dir / PER_CLASS_PLOT, per_class_png)
    files = {"arms_plot": ARMS_PLOT, "per_class_plot": PER_CLASS_PLOT}
    if grid is not None:
        atomic_write_bytes(report_dir / SAMPLES_PLOT, grid)
        files["samples"] = SAMPLES_PLOT
    else:
        (report_dir / SAMPLES_PLOT).unlink(missing_ok=True)
    document = {**report.to_dict(), "files": files}
    atomic_write_bytes(report_dir / REPORT_NAME, (json.dumps(document, indent=1) + "\n").encode())
    return WrittenReport(report_dir, report_dir / REPORT_NAME, arms_png, per_class_png, grid)


def read_report(report_dir: Path) -> dict[str, Any]:
    """The `report.json` last written into `report_dir`."""
    path = Path(report_dir) / REPORT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: materialize augmentation_report first")
    return json.loads(path.read_text())
