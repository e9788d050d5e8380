"""Training the report's arms: the reference classifier trained with several seeds in three arms that differ only
in their data, and each arm summarized over its seeds.

Arms (same architecture, same optimizer-step budget, same seeds, best checkpoint chosen on val):

* `a` real: the original real train split, no augmentation at all (no online flip or shift);
* `b` real + classic: the train split plus its albumentations copies (`train_aug`), and online flip/shift;
* `c` real + classic + synthetic: exactly `b`'s batches (same init, order and online augmentation for a seed),
  each with `synthetic_per_batch` accepted synthetic images added, their loss weighted by `synthetic_weight`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from synthaug.core.progress import ProgressFn, log_parts, part
from synthaug.models.metrics.classifier import ClassifierConfig, logits, train_classifier
from synthaug.report.data import Images, ReportConfig, ReportData
from synthaug.report.stats import Interval, mean_ci

ARMS = {"a": "real", "b": "real + classic", "c": "real + classic + synthetic"}


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


def train_arm(
    data: ReportData, config: ReportConfig, arm: str, seed: int, progress: ProgressFn | None = None
) -> SeedRun:
    """Train one arm with one seed, choose its checkpoint on val, then measure it once on test (NaN, and None per
    class, when the data has no test split: a val-only choice such as the step budget still works); `progress`
    gets every optimizer step."""
    (x, y), extra = _arm_inputs(data, arm)
    if arm == "c" and config.synthetic_per_batch == 0:
        x, y = torch.cat([x, data.synthetic[0]]), torch.cat([y, data.synthetic[1]])
        extra = None
    clf = classifier_config(data, config, arm, seed)
    result = train_classifier(x, y, clf, val=data.val, extra=extra, progress=progress)
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
    with the time so far and an estimate of the time left, and a line of optimizer steps over all models at least
    every 5 s."""
    arms = [a for a in ARMS if a != "c" or len(data.synthetic[0])]
    seeds = [config.first_seed + i for i in range(config.seeds)]
    total, runs, start = len(arms) * len(seeds), [], time.monotonic()
    steps, step_lines = config.steps_for(len(data.train[0])), log_parts(progress)("arms: steps") if progress else None
    for seed in seeds:
        for arm in arms:
            run = train_arm(data, config, arm, seed, progress=part(step_lines, len(runs) * steps, total * steps, start))
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


@dataclass(frozen=True)
class ArmSummary:
    """One arm over its seeds: test and val accuracy with CIs, per-class test accuracy (mean over seeds)."""

    key: str
    name: str
    test: Interval
    val: Interval
    per_class_test: dict[str, float | None]
    runs: list[SeedRun]


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
