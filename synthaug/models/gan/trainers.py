"""One update step of each generator family with its networks, optimizers and EMA: the projection GAN (D step then
G step, DiffAugment on everything D sees), the conditional VAE and the class-conditional diffusion model. The loop
that drives them, budgets and checkpoints is `synthaug.models.gan.training`."""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F

from synthaug.core.compute import Compute
from synthaug.models.gan import distributed
from synthaug.models.gan.ada import AdaptiveStrength
from synthaug.models.gan.config import TrainConfig
from synthaug.models.gan.diffaugment import diff_augment
from synthaug.models.gan.diffusion import diffusion_model
from synthaug.models.gan.ema import GeneratorEma
from synthaug.models.gan.losses import (
    LeCamAnchors,
    d_hinge_loss,
    g_hinge_loss,
    mode_seeking_loss,
    vae_elbo_loss,
)
from synthaug.models.gan.networks import Discriminator, Generator
from synthaug.models.gan.vae import ConditionalVAE


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
        self.ada = AdaptiveStrength(config.ada_target) if config.ada_target > 0 else None
        self.lecam = LeCamAnchors() if config.lecam_weight > 0 else None

    def step(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, float]:
        """One discriminator update on real + fake, then one generator update; returns the losses."""
        b, z_dim, device = x.shape[0], self.config.model.z_dim, self.compute.device
        with torch.no_grad(), self.compute.autocast():
            fake = self.generator(torch.randn(b, z_dim, device=device), y)
        both = self.compute.images(torch.cat([x, fake.to(x.dtype)]))
        aux = self.config.aux_class_weight if y is not None else 0.0
        extra: dict[str, float] = {}
        p = self.ada.p if self.ada is not None else 1.0
        with self.compute.autocast():
            both_y = None if y is None else torch.cat([y, y])
            out = self.d_train(diff_augment(both, self.policy, probability=p), both_y, with_classes=aux > 0, segments=2)
        logits, classes = (out[0].float(), out[1].float()) if aux > 0 else (out.float(), None)
        if self.ada is not None:
            self.ada.observe(logits[:b])
            extra["ada_p"] = p
        d_loss = d_hinge_loss(logits[:b], logits[b:])
        if self.lecam is not None:
            lecam = self.lecam.penalty(logits[:b], logits[b:])
            d_loss = d_loss + self.config.lecam_weight * _recorded(lecam, "d_lecam", extra)
        if classes is not None:
            d_loss = d_loss + aux * _recorded(F.cross_entropy(classes[:b], y), "d_class", extra)
        _descend(self.opt_d, d_loss)

        self.discriminator.requires_grad_(False)
        seeking = self.config.mode_seeking if b >= 2 else 0.0
        z, y = self._generator_inputs(b, y, paired=seeking > 0)
        with self.compute.autocast():
            fake = self.g_train(z, y)
            augmented = diff_augment(self.compute.images(fake), self.policy, probability=p)
            out = self.discriminator(augmented, y, with_classes=aux > 0)
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
            **({"ada": self.ada.state_dict()} if self.ada is not None else {}),
            **({"lecam": self.lecam.state_dict()} if self.lecam is not None else {}),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from `state_dict()`."""
        if self.ada is not None:
            self.ada.load_state_dict(state["ada"])
        if self.lecam is not None:
            self.lecam.load_state_dict(state["lecam"])
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


def _descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One optimizer step down `loss`'s gradients (those of the previous step cleared first)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _recorded(loss: torch.Tensor, name: str, losses: dict[str, float]) -> torch.Tensor:
    """`loss`, with its value noted in `losses` under `name` for the training curves."""
    losses[name] = loss.item()
    return loss
