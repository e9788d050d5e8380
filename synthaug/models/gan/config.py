"""What a training run is told and what it reports: the config that keys its checkpoints, its budget, its
progress reports and its result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from synthaug.core.errors import InvalidInput
from synthaug.core.ranges import check_fields, one_of, ranged
from synthaug.models.gan.diffaugment import default_policy, parse_policy
from synthaug.models.gan.networks import ModelConfig

FAMILIES = ("gan", "vae", "diffusion")
# settings of what a diffusion model learns (other families ignore them), and of how any trained model is sampled
DIFFUSION_FIELDS = ("diffusion_steps", "cond_drop", "diffusion_patch", "diffusion_lr")
SAMPLING_FIELDS = ("sample_steps", "guidance")
# GAN coverage levers: left out of the version key while off, so checkpoints written before they existed still resume
GAN_LEVERS = ("minibatch_std", "mode_seeking", "ada_target", "lecam_weight")
# data levers of every family: left out of the version key while off, for the same reason
DATA_LEVERS = ("mirror",)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that changes what is learned; it (with the data version) keys the checkpoints."""

    model: ModelConfig = field(default_factory=ModelConfig)
    family: str = one_of("gan", FAMILIES)
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.0
    beta2: float = 0.999
    ema_beta: float = 0.999
    ema_warmup_steps: int = 100
    diffaugment: str = "auto"
    kl_weight: float = 1.0
    aux_class_weight: float = ranged(0.0, low=0)
    minibatch_std: bool = one_of(False, (False, True), note="a minibatch-std channel in D (StyleGAN)")
    mode_seeking: float = ranged(0.0, low=0, note="weight of the mode-seeking term (Mao et al. 2019); 0: off")
    ada_target: float = ranged(
        0.0, 0, 1, high_open=True, note="ADA's target r for DiffAugment's strength; 0: always on"
    )
    mirror: bool = one_of(False, (False, True), note="real images flipped left-right at random (StyleGAN's x-flips)")
    lecam_weight: float = ranged(0.0, low=0, note="weight of LeCam regularisation of D (Tseng et al. 2021); 0: off")
    diffusion_steps: int = 1000
    cond_drop: float = ranged(0.1, 0, 1, high_open=True)
    diffusion_patch: int = one_of(2, (1, 2, 4))
    diffusion_lr: float = 1e-3
    sample_steps: int = ranged(20, low=1, note="at most diffusion_steps")
    guidance: float = ranged(1.0, low=0)
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self)
        if self.diffaugment != "auto":
            parse_policy(self.diffaugment)
        if self.sample_steps > self.diffusion_steps:
            raise InvalidInput(
                f"invalid TrainConfig: sample_steps must be at most diffusion_steps ({self.diffusion_steps}), "
                f"got {self.sample_steps}"
            )

    @property
    def policy(self) -> tuple[str, ...]:
        """The DiffAugment policy in force ('auto' = translation + cutout, plus colour for RGB)."""
        policy = default_policy(self.model.channels) if self.diffaugment == "auto" else self.diffaugment
        return parse_policy(policy)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict, for checkpoints and the version key."""
        return asdict(self)

    def version_dict(self) -> dict[str, Any]:
        """`to_dict` without the sampling settings, the diffusion settings of other families, the GAN levers while
        off (or not a GAN) and the data levers while off: what keys the checkpoints, so a new sampler setting reuses
        the trained model and older versions stay valid."""
        dropped = SAMPLING_FIELDS + (() if self.family == "diffusion" else DIFFUSION_FIELDS)
        dropped += tuple(k for k in GAN_LEVERS if self.family != "gan" or not getattr(self, k))
        dropped += tuple(k for k in DATA_LEVERS if not getattr(self, k))
        return {k: v for k, v in self.to_dict().items() if k not in dropped}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of `to_dict`."""
        return cls(**{**data, "model": ModelConfig(**data["model"])})


@dataclass(frozen=True)
class Budget:
    """When to stop and how often to save: total steps and/or total training minutes (summed over resumes)."""

    steps: int | None = None
    minutes: float | None = None
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10
    progress_interval_s: float = 5.0

    def __post_init__(self) -> None:
        if self.steps is None and self.minutes is None:
            raise InvalidInput(
                "a training budget needs steps or minutes (or both): set Budget(steps=...) or minutes=..."
            )
        if (self.steps is not None and self.steps < 0) or (self.minutes is not None and self.minutes < 0):
            raise InvalidInput(f"budget steps and minutes must not be negative, got {self.steps} and {self.minutes}")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise InvalidInput("checkpoint_every and log_every must be at least 1")

    def describe(self) -> str:
        """The budget in words for the log: `4 minutes or 2,000 steps, a checkpoint every 500 steps`."""
        limits = []
        if self.minutes is not None:
            limits.append(f"{self.minutes:g} minutes")
        if self.steps is not None:
            limits.append(f"{self.steps:,} steps")
        first = " (whichever comes first)" if len(limits) == 2 else ""
        return f"{' or '.join(limits)}{first}, a checkpoint every {self.checkpoint_every:,} steps"


@dataclass(frozen=True)
class TrainProgress:
    """One progress report: where training is, its recent losses, speed and time left."""

    step: int
    total_steps: int | None
    losses: dict[str, float]
    images_per_s: float
    elapsed_s: float
    eta_s: float | None


def describe_progress(p: TrainProgress) -> str:
    """A log line: `step 120/1,000, d_loss 1.52, g_loss 0.61, 450 img/s, ~93s left`."""
    total = f"/{p.total_steps:,}" if p.total_steps is not None else ""
    losses = ", ".join(f"{k} {v:.3f}" for k, v in p.losses.items())
    eta = f", ~{p.eta_s:.0f}s left" if p.eta_s is not None else ""
    return f"step {p.step:,}{total}, {losses}, {p.images_per_s:,.0f} img/s{eta}"


@dataclass
class TrainResult:
    """What a training call did: version, final step and checkpoint, loss history, speed and why it stopped."""

    version: str
    step: int
    checkpoint: Path | None
    resumed_from_step: int | None
    history: list[dict[str, float]]
    images_per_s: float
    train_seconds: float
    run_seconds: float
    stopped_by: str
    skipped_checkpoints: list[tuple[Path, str]]
    sampler: nn.Module
