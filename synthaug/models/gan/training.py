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
from typing import Any

import torch
from torch.nn import functional as F

from synthaug.core.compute import Compute, resolve_compute
from synthaug.core.errors import InvalidInput
from synthaug.models.gan import checkpoints, distributed
from synthaug.models.gan.config import Budget, TrainConfig, TrainProgress, TrainResult
from synthaug.models.gan.diffaugment import diff_augment
from synthaug.models.gan.diffusion import diffusion_model
from synthaug.models.gan.ema import GeneratorEma
from synthaug.models.gan.losses import d_hinge_loss, g_hinge_loss, mode_seeking_loss, vae_elbo_loss
from synthaug.models.gan.networks import Discriminator, Generator
from synthaug.models.gan.vae import ConditionalVAE

Batch = tuple[torch.Tensor, torch.Tensor]
BatchSource = Iterable[Batch] | Callable[[int], Iterable[Batch]]


class GanTrainer:
    """Generator, projection discriminator, their Adam optimizers and the generator EMA; one step = D step + G step."""

    def __init__(self, config: TrainConfig, compute: Compute, world: distributed.World) -> None:
        self.config, self.compute = config, compute
        self.generator = compute.module(Generator(config.model))
        class_head = config.aux_class_weight > 0 and config.model.num_classes > 0
        discriminator = Discriminator(config.model, class_head=class_head, minibatch_std=config.minibatch_std)
        self.discriminator = compute.module(discriminator)
        self.g_train = distributed.wrap(self.generator, world, compute.device)
        self.d_train = distributed.wrap(self.discriminator, world, compute.device)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.lr_g, betas=betas, fused=True)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_d, betas=betas, fused=True)
        self.ema = GeneratorEma(self.generator, config.ema_beta, config.ema_warmup_steps)
        self.policy = config.policy

    def step(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, float]:
        """One discriminator update on real + fake, then one generator update; returns the losses."""
        b, z_dim, device = x.shape[0], self.config.model.z_dim, self.compute.device
        with torch.no_grad(), self.compute.autocast():
            fake = self.generator(torch.randn(b, z_dim, device=device), y)
        both = self.compute.images(torch.cat([x, fake.to(x.dtype)]))
        aux = self.config.aux_class_weight if y is not None else 0.0
        extra: dict[str, float] = {}
        with self.compute.autocast():
            both_y = None if y is None else torch.cat([y, y])
            out = self.d_train(diff_augment(both, self.policy), both_y, with_classes=aux > 0, segments=2)
        logits, classes = (out[0].float(), out[1].float()) if aux > 0 else (out.float(), None)
        d_loss = d_hinge_loss(logits[:b], logits[b:])
        if classes is not None:
            d_loss = d_loss + aux * _recorded(F.cross_entropy(classes[:b], y), "d_class", extra)
        _descend(self.opt_d, d_loss)

        self.discriminator.requires_grad_(False)
        seeking = self.config.mode_seeking if b >= 2 else 0.0
        z, y = self._generator_inputs(b, y, paired=seeking > 0)
        with self.compute.autocast():
            fake = self.g_train(z, y)
            out = self.discriminator(diff_augment(self.compute.images(fake), self.policy), y, with_classes=aux > 0)
        fake_logits = out[0] if aux > 0 else out
        g_loss = g_hinge_loss(fake_logits.float())
        if aux > 0:
            g_loss = g_loss + aux * _recorded(F.cross_entropy(out[1].float(), y), "g_class", extra)
        if seeking > 0:
            pairs = [t.float().chunk(2) for t in (fake, z)]
            g_loss = g_loss + seeking * _recorded(mode_seeking_loss(*pairs[0], *pairs[1]), "g_mode_seeking", extra)
        _descend(self.opt_g, g_loss)
        self.discriminator.requires_grad_(True)
        self.ema.update(self.generator)
        return {
            "d_loss": d_loss.item(),
            "g_loss": g_loss.item(),
            "d_real": logits[:b].mean().item(),
            "d_fake": logits[b:].mean().item(),
            **extra,
        }

    def _generator_inputs(self, b: int, y: torch.Tensor | None, *, paired: bool) -> tuple[torch.Tensor, ...]:
        """Latents and labels of the generator update; `paired` (mode seeking): an even count whose second half
        repeats the first half's labels, so each pair is two latents of one class at the cost of one batch."""
        n = b - b % 2 if paired else b
        if paired and y is not None:
            y = torch.cat([y[: n // 2], y[: n // 2]])
        return torch.randn(n, self.config.model.z_dim, device=self.compute.device), y

    def state_dict(self) -> dict[str, Any]:
        """Networks, optimizers and EMA."""
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "ema": self.ema.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from `state_dict()`."""
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.ema.load_state_dict(state["ema"])


class _OneNetworkTrainer:
    """One network trained by Adam, with an EMA of it (the sampler); checkpoint state under `state_key`."""

    state_key = "model"

    def __init__(
        self, network: torch.nn.Module, config: TrainConfig, compute: Compute, world: distributed.World, lr: float
    ) -> None:
        self.config, self.compute = config, compute
        self.network = compute.module(network)
        self.train_module = distributed.wrap(self.network, world, compute.device)
        self.opt = torch.optim.Adam(self.network.parameters(), lr=lr, betas=(0.9, config.beta2))
        self.ema = GeneratorEma(self.network, config.ema_beta, config.ema_warmup_steps)

    def update(self, loss: torch.Tensor) -> None:
        """One optimizer step on `loss`, then the EMA."""
        _descend(self.opt, loss)
        self.ema.update(self.network)

    def state_dict(self) -> dict[str, Any]:
        """Network, optimizer and EMA."""
        return {self.state_key: self.network.state_dict(), "opt": self.opt.state_dict(), "ema": self.ema.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from `state_dict()`."""
        self.network.load_state_dict(state[self.state_key])
        self.opt.load_state_dict(state["opt"])
        self.ema.load_state_dict(state["ema"])


class VaeTrainer(_OneNetworkTrainer):
    """Conditional VAE, its Adam optimizer and an EMA of it; one step = one ELBO update."""

    state_key = "vae"

    def __init__(self, config: TrainConfig, compute: Compute, world: distributed.World) -> None:
        super().__init__(ConditionalVAE(config.model), config, compute, world, config.lr_g)

    def step(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, float]:
        """One update of the negative ELBO; returns it and its parts."""
        with self.compute.autocast():
            recon, mu, logvar = self.train_module(x, y)
        terms = vae_elbo_loss(recon, x, mu.float(), logvar.float(), kl_weight=self.config.kl_weight)
        self.update(terms.loss)
        return {"loss": terms.loss.item(), "reconstruction": terms.reconstruction.item(), "kl": terms.kl.item()}


class DiffusionTrainer(_OneNetworkTrainer):
    """Class-conditional diffusion UNet, its Adam optimizer and an EMA of it; one step = one ε-objective update on
    random timesteps, with `cond_drop` of the labels dropped so classifier-free guidance can be used later."""

    state_key = "diffusion"

    def __init__(self, config: TrainConfig, compute: Compute, world: distributed.World) -> None:
        super().__init__(diffusion_model(config), config, compute, world, config.diffusion_lr)

    def step(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, float]:
        """One update of the mean squared error between the true and the predicted noise; returns it."""
        x_t, t, noise, y_in = self.network.noised(x, y, self.config.cond_drop)
        with self.compute.autocast():
            predicted = self.train_module(x_t, t, y_in)
        loss = F.mse_loss(predicted.float(), noise.float())
        self.update(loss)
        return {"loss": loss.item()}


TRAINERS = {"gan": GanTrainer, "vae": VaeTrainer, "diffusion": DiffusionTrainer}


def build_trainer(config: TrainConfig, compute: Compute, world: distributed.World) -> GanTrainer | _OneNetworkTrainer:
    """The trainer of the configured family."""
    return TRAINERS[config.family](config, compute, world)


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
    if world.is_main and step > start_step:
        saved = save(train_seconds)
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


def _descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One optimizer step down `loss`'s gradients (those of the previous step cleared first)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _recorded(loss: torch.Tensor, name: str, losses: dict[str, float]) -> torch.Tensor:
    """`loss`, with its value noted in `losses` under `name` for the training curves."""
    losses[name] = loss.item()
    return loss


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
