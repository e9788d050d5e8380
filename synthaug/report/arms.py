"""Training the report's arms: the reference classifier trained with several seeds in three arms that differ only
in their data, and each arm summarized over its seeds.

Arms (same architecture, same optimizer-step budget, same seeds, best checkpoint chosen on val):

* `a` real: the original real train split, no augmentation at all (no online flip or shift);
* `b` real + classic: the train split plus a share of its albumentations copies (`train_aug`), and online
  flip/shift; the share is chosen on val among `classic_shares` before (c) is trained (`report.baseline`);
* `c` real + classic + synthetic: exactly `b`'s batches at the chosen share (same init, order and online
  augmentation for a seed), each with `synthetic_per_batch` accepted synthetic images added, their loss weighted by
  `synthetic_weight`, labeled by their intended class (`synthetic_labels` "hard") or by the feature extractor's
  tempered class probabilities ("soft", `ReportData.synthetic_soft`). With `synthetic_schedule` "pretrain" it
  instead spends `pretrain_share` of the step budget on the synthetic images alone, then fine-tunes on (b)'s
  batches for the rest (the same total steps). With `synthetic_norm` "separate" the synthetic images of a batch are
  normalised by their own batch-norm statistics and never move the running statistics of the tested model. It is
  not trained when the chosen (b) is below (a) on val: the gain is then not measurable.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from synthaug.core.errors import InvalidInput
from synthaug.core.progress import Countdown, ProgressFn, log_parts, part
from synthaug.models.metrics.classifier import (
    ClassifierConfig,
    SmallCNN,
    logits,
    per_class_recall,
    train_classifier,
)
from synthaug.report.arm_cache import ArmCache, data_digest
from synthaug.report.baseline import choose_baseline, recipe_name
from synthaug.report.data import Images, ReportConfig, ReportData
from synthaug.report.parallel import ArmJob, train_in_workers
from synthaug.report.stats import Interval, mean_ci

ARMS = {"a": "real", "b": "real + classic", "c": "real + classic + synthetic"}


@dataclass(frozen=True)
class SeedRun:
    """One trained model: its arm and seed, val accuracy of the chosen checkpoint, its test accuracy (overall and
    per class, None for a class without test images), the step it was chosen at, the time it took and the share of
    the classic copies it was trained with (arms b and c). With val split in halves (`report.choice`), the checkpoint
    is chosen on half 1 (`select_accuracy`) and `val_accuracy` is measured on half 2; arm (c) runs also name their
    synthetic weight and images per batch."""

    arm: str
    seed: int
    val_accuracy: float
    test_accuracy: float
    per_class_test: list[float | None]
    best_step: int | None
    steps: int
    seconds: float
    classic_share: float = 1.0
    select_accuracy: float | None = None
    synthetic_weight: float | None = None
    synthetic_per_batch: int | None = None
    online: bool = True

    @property
    def select_val(self) -> float:
        """The val accuracy every choice is made on: the choosing half when val is split, else val itself."""
        return self.val_accuracy if self.select_accuracy is None else self.select_accuracy


def _arm_inputs(data: ReportData, arm: str, classic_share: float) -> tuple[Images, Images | None]:
    """(training images, extra images mixed into each batch) of an arm; arms b and c pool the real train split with
    `classic_share` of the classic copies (the same fixed subset for every seed)."""
    if arm == "a":
        return data.train, None
    aug_x, aug_y = data.train_aug
    keep = torch.randperm(len(aug_x), generator=torch.Generator().manual_seed(0))[: round(classic_share * len(aug_x))]
    pooled = (torch.cat([data.train[0], aug_x[keep]]), torch.cat([data.train[1], aug_y[keep]]))
    return pooled, (data.synthetic if arm == "c" else None)


def classifier_config(
    data: ReportData, config: ReportConfig, arm: str, seed: int, online: bool = True
) -> ClassifierConfig:
    """The reference classifier of one arm and seed: only the online augmentation (arms b and c unless `online` is
    False; never arm a) and the synthetic mixing differ between arms, never the architecture, the step budget, the
    learning rate or the seed."""
    online = online and arm != "a"
    steps = config.steps_for(len(data.train[0]))
    pretrain = config.pretrain_steps(steps) if arm == "c" else 0
    channels, size = data.train[0].shape[1], data.train[0].shape[2]
    return ClassifierConfig(
        channels=channels,
        resolution=size,
        num_classes=len(data.classes),
        width=config.width,
        batch_size=config.batch_size,
        lr=config.lr,
        flip=data.flip and online,
        shift=2 if online else 0,
        seed=seed,
        steps=steps - pretrain,
        val_every=max(1, (steps - pretrain) // config.evaluations),
        extra_per_batch=config.synthetic_per_batch if arm == "c" and not pretrain else 0,
        extra_weight=config.synthetic_weight,
        extra_pretrain_steps=pretrain,
        extra_separate_norm=arm == "c" and config.synthetic_norm == "separate",
        balanced=config.balanced_for(data.train[1], len(data.classes)),
    )


def train_arm(
    data: ReportData,
    config: ReportConfig,
    arm: str,
    seed: int,
    classic_share: float = 1.0,
    progress: ProgressFn | None = None,
    online: bool = True,
) -> SeedRun:
    """Train one arm with one seed, choose its checkpoint on val, then measure it once on test (NaN, and None per
    class, when the data has no test split: a val-only choice such as the step budget still works); `progress`
    gets every optimizer step."""
    (x, y), extra = _arm_inputs(data, arm, classic_share)
    if arm == "c" and config.synthetic_per_batch == 0 and config.synthetic_schedule == "mixed":
        x, y = torch.cat([x, data.synthetic[0]]), torch.cat([y, data.synthetic[1]])
        extra = None
    elif extra is not None and config.synthetic_labels == "soft":
        if data.synthetic_soft is None:
            raise InvalidInput(
                "synthetic_labels is 'soft' but the report data has no soft targets: load them with "
                "synthaug.report.soft.with_soft_targets before training arm (c)"
            )
        extra = (extra[0], data.synthetic_soft)
    clf = classifier_config(data, config, arm, seed, online)
    select = data.val if data.val_select is None else data.val_select
    result = train_classifier(x, y, clf, val=select, extra=extra, progress=progress)
    test_accuracy, per_class = _score(result.model, data.test, len(data.classes), clf.balanced)
    val_accuracy = float(result.val_accuracy)
    if data.val_select is not None:
        val_accuracy = _score(result.model, data.val, len(data.classes), clf.balanced)[0]
    return SeedRun(
        arm=arm,
        seed=seed,
        val_accuracy=val_accuracy,
        test_accuracy=test_accuracy,
        per_class_test=per_class,
        best_step=result.best_step,
        steps=result.steps,
        seconds=result.seconds,
        classic_share=classic_share if arm != "a" else 0.0,
        select_accuracy=None if data.val_select is None else float(result.val_accuracy),
        synthetic_weight=config.synthetic_weight if arm == "c" else None,
        synthetic_per_batch=config.synthetic_per_batch if arm == "c" else None,
        online=online and arm != "a",
    )


def _score(model: SmallCNN, images: Images, num_classes: int, balanced: bool) -> tuple[float, list[float | None]]:
    """Accuracy (balanced: mean per-class recall) and per-class recall of a model on images; NaN and None per class
    on an empty set (no test split)."""
    if not len(images[0]):
        return math.nan, [None] * num_classes
    predicted = logits(model, images[0]).argmax(1)
    per_class = per_class_recall(predicted, images[1], num_classes)
    if balanced:
        return float(np.mean([r for r in per_class if r is not None])), per_class
    return float((predicted == images[1]).float().mean()), per_class


def run_arms(
    data: ReportData,
    config: ReportConfig,
    progress: Callable[[str], None] | None = None,
    workers: int = 1,
    cache: ArmCache | None = None,
) -> list[SeedRun]:
    """Arm (a) and every candidate of arm (b) for every seed (seed-major, so a partial log covers them all; with
    `classic_optional`, arm (a)'s runs also stand for the "no classic augmentation" candidate), then, when the
    chosen (b) is sound, arm (c) at (b)'s recipe with every synthetic candidate; with `workers` > 1 the
    models of each phase train side by side in that many processes (same results). `progress` gets one line per
    model with the time so far and an estimate of the time left, and a line at least every 5 s between them. Runs of
    arms (a) and (b) found in `cache` are read back instead of trained; those trained are stored there."""
    shares = config.classic_shares if len(data.train_aug[0]) else (1.0,)
    seeds = [config.first_seed + i for i in range(config.seeds)]
    with_c = len(data.synthetic[0]) > 0
    candidates = config.synthetic_candidates()
    baseline_jobs: list[ArmJob] = [
        (config, arm, seed, share, True) for seed in seeds for arm, share in [("a", 0.0)] + [("b", s) for s in shares]
    ]
    total = len(baseline_jobs) + (len(seeds) * len(candidates) if with_c else 0)
    runs: list[SeedRun] = []
    announced, trained, start, countdown = [0], [0], time.monotonic(), Countdown(total)
    cache = cache or ArmCache(None)
    data_key = data_digest(data) if cache.folder is not None else ""
    steps, step_lines = config.steps_for(len(data.train[0])), log_parts(progress)("arms: steps") if progress else None

    def announce(run: SeedRun) -> None:
        """One line per finished model: its scores, the models done and the time left."""
        announced[0] += 1
        trained[0] += 1
        if run.arm != "c" and cache.folder is not None:
            job = (config, run.arm, run.seed, run.classic_share, run.online)
            cache.put(_cache_key(data, data_key, job), dataclasses.asdict(run))
        if progress is None:
            return
        elapsed = time.monotonic() - start
        left = countdown.finished(trained[0], elapsed)
        recipe = f"; classic recipe: {recipe_name(run.classic_share, run.online)}" if run.arm != "a" else ""
        if run.arm == "c" and len(candidates) > 1:
            recipe += f", synthetic weight {run.synthetic_weight:g} x {run.synthetic_per_batch} per batch"
        progress(
            f"arm {run.arm} ({ARMS[run.arm]}{recipe}) seed {run.seed}: val {run.val_accuracy:.4f}, test "
            f"{run.test_accuracy:.4f} (best step {run.best_step}/{run.steps}); {announced[0]}/{total} models, "
            f"{elapsed:.0f} s so far, ~{left:.0f} s left"
        )

    def waiting(running: int) -> None:
        """A line while models train in worker processes and none has ended for a while: the models done and the
        time since the first one started, over both phases; the time left counts down between models."""
        if progress is None:
            return
        done, elapsed = announced[0], time.monotonic() - start
        seconds = countdown.left(trained[0], elapsed)
        left = f", ~{seconds:.0f} s left" if seconds is not None else ""
        progress(f"arms: {done}/{total} models done, {running} training side by side, {elapsed:.0f} s so far{left}")

    def train(jobs: list[ArmJob], remember: bool = False) -> None:
        """Train `jobs` (with `remember`, read back those in `cache` and store the others as each ends), appending
        their runs in job order."""
        keys = [_cache_key(data, data_key, job) if remember and cache.folder else None for job in jobs]
        found = [_remembered(cache, key) for key in keys]
        if any(found):
            known = sum(run is not None for run in found)
            countdown.total -= known
            announced[0] += known
            if progress is not None:
                progress(
                    f"arms: {known} of the {len(jobs)} models of arms (a) and (b) read back from an earlier report "
                    f"on the same images and settings ({cache.folder}); {total - known} models to train"
                )
        new = iter(train_now([job for job, run in zip(jobs, found, strict=True) if run is None]))
        runs.extend(run if run is not None else next(new) for run in found)

    def train_now(jobs: list[ArmJob]) -> list[SeedRun]:
        """Train `jobs`, side by side when `workers` > 1, announcing each run as it ends."""
        if workers > 1 and len(jobs) > 1:
            return train_in_workers(data, jobs, workers, announce, waiting)
        out = []
        for job_config, arm, seed, share, online in jobs:
            done = part(step_lines, announced[0] * steps, total * steps, start)
            out.append(train_arm(data, job_config, arm, seed, share, progress=done, online=online))
            announce(out[-1])
        return out

    train(baseline_jobs, remember=True)
    if config.classic_optional and len(data.train_aug[0]):  # "no classic augmentation" is arm (a)'s recipe and runs
        runs.extend(dataclasses.replace(r, arm="b", online=False) for r in list(runs) if r.arm == "a")
    choice = choose_baseline(runs, config.baseline_tolerance, config.confidence)
    if with_c and choice is not None and choice.sound:
        train(
            [
                (
                    dataclasses.replace(config, synthetic_weight=weight, synthetic_per_batch=per_batch),
                    "c",
                    seed,
                    choice.classic_share,
                    choice.online,
                )
                for seed in seeds
                for weight, per_batch in candidates
            ]
        )
    elif with_c and progress is not None:
        progress("arm c not trained: even the best real + classic arm is below real alone on val")
    return runs


def _cache_key(data: ReportData, data_key: str, job: ArmJob) -> str:
    """The `ArmCache` key of one (a) or (b) job, or of the run it gave (whose classic share and online flag are
    those of the job, except arm (a)'s: 0 and off, as `train_arm` records them)."""
    job_config, arm, seed, share, online = job
    share, online = (share, online) if arm != "a" else (0.0, False)
    return ArmCache.key(data_key, classifier_config(data, job_config, arm, seed, online), arm, seed, share, online)


def _remembered(cache: ArmCache, key: str | None) -> SeedRun | None:
    """The run stored under `key`, or None (no key, no entry, or an entry of another shape)."""
    fields = cache.get(key) if key is not None else None
    try:
        return SeedRun(**fields) if fields is not None else None
    except TypeError:
        return None


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
