"""One call for the `gan_checkpoint` asset: train (or resume) within a budget, then sample per class from the EMA
generator and return the loss curve and a real-beside-generated grid; the quality metrics with their floors are
filled in by `synthaug.models.stages.measure_generator`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from synthaug.core.classes import check_trainable
from synthaug.core.compute import Compute
from synthaug.core.errors import MissingInput
from synthaug.models.gan import checkpoints
from synthaug.models.gan.checkpoints import Checkpoint
from synthaug.models.gan.config import Budget, TrainConfig, TrainProgress, TrainResult
from synthaug.models.gan.diffusion import diffusion_model
from synthaug.models.gan.networks import Generator
from synthaug.models.gan.sampling import loss_curve_png, sample_grid_png, sample_per_class
from synthaug.models.gan.training import BatchSource, train
from synthaug.models.gan.vae import ConditionalVAE
from synthaug.models.metrics.classifier import as_float
from synthaug.models.metrics.fid import MetricValue

Images = tuple[torch.Tensor, torch.Tensor]
LOSS_KEYS = {"gan": ("d_loss", "g_loss"), "vae": ("loss", "reconstruction", "kl"), "diffusion": ("loss",)}


@dataclass(frozen=True)
class EvalData:
    """Real images for pictures and metrics: `reference` (e.g. the val split), a disjoint `real` set (e.g. a train
    sample) for the floors, and optionally the real `test` split for CAS. x uint8 or [-1, 1] float, y indices."""

    reference: Images
    real: Images
    test: Images | None = None


@dataclass
class GanRun:
    """What `train_gan` produced: the training result, metrics with floors and the two pictures as PNG bytes."""

    train: TrainResult
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    loss_curve_png: bytes = b""
    sample_grid_png: bytes = b""
    class_balanced: bool = False

    @property
    def checkpoint(self) -> Path | None:
        """The newest checkpoint file of this version."""
        return self.train.checkpoint

    def metadata(self) -> dict[str, float | int | str | None]:
        """Flat numbers and strings for materialization metadata."""
        out: dict[str, float | int | str | None] = {
            "version": self.train.version,
            "step": self.train.step,
            "images_per_s": round(self.train.images_per_s, 1),
            "train_minutes": round(self.train.train_seconds / 60, 2),
            "stopped_by": self.train.stopped_by,
            "resumed_from_step": self.train.resumed_from_step,
            "skipped_checkpoints": len(self.train.skipped_checkpoints),
            "class_balanced": self.class_balanced,
        }
        for value in self.metrics.values():
            out.update(value.as_dict())
        return out


def load_sampler(checkpoint_root: Path, version: str | None = None) -> tuple[torch.nn.Module, Checkpoint]:
    """The EMA generator (VAE, diffusion model) of the newest valid checkpoint of `version` (default: the latest).

    Returns (sampler in eval mode on CPU, the checkpoint it came from); a missing checkpoint is a clear error.
    """
    version = version if version is not None else checkpoints.latest_version(checkpoint_root)
    found = checkpoints.load_latest(checkpoint_root, version) if version is not None else None
    if found is None:
        raise MissingInput(
            f"no valid GAN checkpoint under {checkpoint_root}"
            + (f" for version {version}" if version else "")
            + ": materialize gan_checkpoint first"
        )
    config = TrainConfig.from_dict(found.state["config"])
    sampler = build_sampler(config)
    sampler.load_state_dict(found.state["trainer"]["ema"]["model"])
    return sampler.eval().requires_grad_(False), found


def build_sampler(config: TrainConfig) -> torch.nn.Module:
    """An untrained sampler of the configured family, the shape a checkpoint's EMA weights load into."""
    if config.family == "diffusion":
        return diffusion_model(config)
    return Generator(config.model) if config.family == "gan" else ConditionalVAE(config.model)


def check_class_counts(class_counts: Mapping[str, int]) -> None:
    """Refuse to train a conditional model on data no model can learn from (`check_trainable`); a class too small
    to generate is left out of generation by `synthetic_images`, not refused here."""
    check_trainable(class_counts)


def train_gan(
    batches: BatchSource,
    config: TrainConfig,
    checkpoint_root: Path,
    data_version: str,
    budget: Budget,
    *,
    compute: Compute | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
    class_names: Sequence[str] | None = None,
    class_counts: Mapping[str, int] | None = None,
    eval_data: EvalData | None = None,
    grid_per_class: int = 8,
    seed: int = 0,
) -> GanRun:
    """Train or resume, then plot the loss curve and, given `eval_data`, a real-beside-generated grid. The quality
    metrics are measured apart (`synthaug.models.stages.measure_generator`), with the feature extractor."""
    if class_counts is not None and config.model.num_classes:
        check_class_counts(class_counts)
    result = train(batches, config, checkpoint_root, data_version, budget, compute=compute, progress=progress)
    run = GanRun(train=result, loss_curve_png=loss_curve_png(result.history, LOSS_KEYS[config.family]))
    sampler = result.sampler
    if eval_data is not None:
        fake, fake_y = sample_per_class(sampler, grid_per_class, seed=seed)
        real_x, real_y = eval_data.reference
        run.sample_grid_png = sample_grid_png(
            fake, fake_y, as_float(real_x), real_y, class_names, per_class=grid_per_class
        )
    return run
