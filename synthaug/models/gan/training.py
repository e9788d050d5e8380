"""The training loop: hinge-loss projection cGAN (or the conditional VAE or diffusion model) on any stream of
(images, labels) batches, with a budget in steps or minutes, atomic versioned checkpoints, exact resume, throttled
progress reports and torch.distributed (DDP) when launched by torchrun.

Batches are `(x, y)`: x float B×C×H×W in [-1, 1], y int64 class indices (ignored when unconditional). The data
source is either an iterable that is re-iterated every epoch or a callable `make_batches(epoch)`; the latter
(or an object with `set_epoch`) lets a resumed run see exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch

from synthaug.core.compute import Compute, resolve_compute
from synthaug.core.errors import InvalidInput
from synthaug.models.gan import checkpoints, distributed
from synthaug.models.gan.config import Budget, TrainConfig, TrainProgress, TrainResult
from synthaug.models.gan.trainers import build_trainer

Batch = tuple[torch.Tensor, torch.Tensor]
BatchSource = Iterable[Batch] | Callable[[int], Iterable[Batch]]


def version_for(data_version: str, config: TrainConfig, world_size: int = 1) -> str:
    """Checkpoint version: the data version, the training config and (when > 1) the number of ranks."""
    extra = {"world_size": world_size} if world_size > 1 else {}
    return checkpoints.version_key(data_version, {**config.version_dict(), **extra})


def train(
    batches: BatchSource,
    config: TrainConfig,
    checkpoint_root: Path,
    data_version: str,
    budget: Budget,
    *,
    compute: Compute | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
) -> TrainResult:
    """Train until the budget is spent, resuming from the newest valid checkpoint of the same version.

    Under torchrun (WORLD_SIZE > 1) every rank calls this with the same, deterministically ordered source; rank r
    takes every r-th batch, gradients are averaged by DDP, and only rank 0 writes checkpoints and reports progress.
    """
    compute = compute if compute is not None else resolve_compute()
    world = distributed.init_from_env(compute.device)
    version = version_for(data_version, config, world.size)
    resumed = checkpoints.load_latest(checkpoint_root, version)
    torch.manual_seed(config.seed)
    trainer = build_trainer(config, compute, world)
    step, epoch, position, train_seconds, history = 0, 0, 0, 0.0, []
    if resumed is not None:
        state = resumed.state
        trainer.load_state_dict(state["trainer"])
        step, epoch, position = int(state["step"]), int(state["epoch"]), int(state["position"])
        train_seconds, history = float(state["train_seconds"]), list(state["history"])
        if world.is_main:
            torch.set_rng_state(state["rng"])
        else:
            torch.manual_seed(hash((config.seed, world.rank, step)) % 2**63)
    else:
        torch.manual_seed(config.seed * 1_000_003 + world.rank)

    num_classes = config.model.num_classes
    start_step, run_start, images = step, time.monotonic(), 0
    window: dict[str, list[float]] = {}
    report_step, report_time = step, run_start
    stopped_by, saved = "", resumed.path if resumed is not None else None

    def save(now_train_seconds: float) -> Path:
        state = {
            "trainer": trainer.state_dict(),
            "config": config.to_dict(),
            "data_version": data_version,
            "world_size": world.size,
            "epoch": epoch,
            "position": position,
            "train_seconds": now_train_seconds,
            "history": history,
            "rng": torch.get_rng_state(),
        }
        return checkpoints.save_checkpoint(checkpoint_root, version, step, state, keep=budget.keep_checkpoints)

    stream = _batches(batches, world, epoch, position)
    while True:
        reasons = _stop_reasons(budget, step, train_seconds + (time.monotonic() - run_start))
        if distributed.any_rank(bool(reasons), world, compute.device):
            stopped_by = reasons or "another rank's budget"
            break
        (x, y), epoch, position = next(stream)
        if config.mirror:
            x = mirrored(x)
        y = _labels(y, num_classes, x.shape[0])
        losses = trainer.step(compute.images(x), None if y is None else y.to(compute.device))
        step += 1
        images += x.shape[0] * world.size
        for key, value in losses.items():
            window.setdefault(key, []).append(value)
        if step % budget.log_every == 0:
            history.append(_mean_row(step, window))
            window = {}
        now = time.monotonic()
        if world.is_main and step % budget.checkpoint_every == 0:
            saved = save(train_seconds + (now - run_start))
        if progress is not None and world.is_main and now - report_time >= budget.progress_interval_s:
            rate = (step - report_step) * x.shape[0] * world.size / max(now - report_time, 1e-9)
            progress(_progress(step, budget, losses, rate, train_seconds + (now - run_start)))
            report_step, report_time = step, now

    run_seconds = time.monotonic() - run_start
    train_seconds += run_seconds
    if window:
        history.append(_mean_row(step, window))
    settings_changed = resumed is not None and resumed.state.get("config") != config.to_dict()
    if world.is_main and (step > start_step or settings_changed):
        saved = save(train_seconds)  # also with no new step: the checkpoint records how to sample it now
    distributed.barrier(world)
    rate = images / run_seconds if run_seconds > 0 else 0.0
    if progress is not None and world.is_main:
        last = {k: v for k, v in history[-1].items() if k != "step"} if history else {}
        progress(_progress(step, budget, last, rate, train_seconds))
    return TrainResult(
        version=version,
        step=step,
        checkpoint=saved,
        resumed_from_step=resumed.step if resumed is not None else None,
        history=history,
        images_per_s=rate,
        train_seconds=train_seconds,
        run_seconds=run_seconds,
        stopped_by=stopped_by,
        skipped_checkpoints=resumed.skipped if resumed is not None else [],
        sampler=trainer.ema.model,
    )


def mirrored(x: torch.Tensor) -> torch.Tensor:
    """The batch with each image flipped left-right with probability 1/2 (the global RNG, so a resumed run flips as
    an uninterrupted one would): twice the real images for a small train set whose classes look the same mirrored."""
    flips = torch.rand(x.shape[0]) < 0.5
    return torch.where(flips.view(-1, *([1] * (x.ndim - 1))), x.flip(-1), x)


def _mean_row(step: int, window: dict[str, list[float]]) -> dict[str, float]:
    return {"step": float(step), **{k: sum(v) / len(v) for k, v in window.items()}}


def _stop_reasons(budget: Budget, step: int, train_seconds: float) -> str:
    if budget.steps is not None and step >= budget.steps:
        return "steps"
    if budget.minutes is not None and train_seconds >= budget.minutes * 60:
        return "minutes"
    return ""


def _progress(step: int, budget: Budget, losses: dict[str, float], rate: float, train_seconds: float) -> TrainProgress:
    etas = []
    if budget.steps is not None and rate > 0 and step > 0:
        etas.append(max(budget.steps - step, 0) * train_seconds / step)
    if budget.minutes is not None:
        etas.append(max(budget.minutes * 60 - train_seconds, 0.0))
    return TrainProgress(
        step=step,
        total_steps=budget.steps,
        losses=dict(losses),
        images_per_s=rate,
        elapsed_s=train_seconds,
        eta_s=min(etas) if etas else None,
    )


def _labels(y: torch.Tensor, num_classes: int, batch: int) -> torch.Tensor | None:
    """Class indices for a conditional model (checked), None for an unconditional one."""
    if not num_classes:
        return None
    y = torch.as_tensor(y, dtype=torch.long)
    if y.shape != (batch,):
        raise InvalidInput(f"a batch of {batch} images came with labels of shape {tuple(y.shape)}: expected ({batch},)")
    bad = y[(y < 0) | (y >= num_classes)]
    if bad.numel():
        raise InvalidInput(
            f"labels {sorted(set(bad.tolist()))[:5]} are outside [0, {num_classes}) of this conditional model "
            "(-1 = unlabeled): train on labeled images only (labeled_only=True), or set num_classes=0"
        )
    return y


def epoch_batches(source: BatchSource, epoch: int) -> Iterable[Batch]:
    """The batches of `epoch`: `source(epoch)` for a callable, `set_epoch(epoch)` then iterate, or just iterate."""
    if callable(source) and not hasattr(source, "__iter__"):
        return source(epoch)
    if hasattr(source, "set_epoch"):
        source.set_epoch(epoch)
    return source


def _batches(
    source: BatchSource, world: distributed.World, epoch: int, position: int
) -> Iterator[tuple[Batch, int, int]]:
    """Endless (batch, epoch, next position) for this rank, starting at `position` of `epoch`.

    Position counts batches of the source's epoch; rank r takes batch r of every complete group of `world.size`
    consecutive batches, so all ranks step together and drop the same incomplete tail.
    """
    while True:
        served = 0
        groups = _groups(iter(epoch_batches(source, epoch)), world.size)
        for index, group in enumerate(itertools.islice(groups, position // world.size, None)):
            served += 1
            yield group[world.rank], epoch, (position // world.size + index + 1) * world.size
        if served == 0 and position == 0:
            raise InvalidInput(
                f"the training data produced no batches in epoch {epoch}"
                + (f" (fewer than {world.size} batches, one per rank)" if world.size > 1 else "")
                + ": check that the tensors hold labeled training images, or lower the batch size"
            )
        epoch, position = epoch + 1, 0


def _groups(batches: Iterator[Batch], size: int) -> Iterator[list[Batch]]:
    while True:
        group = list(itertools.islice(batches, size))
        if len(group) < size:
            return
        yield group
