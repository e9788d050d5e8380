"""A small CNN classifier trained on real images: the feature extractor of the quality metrics (FID/KID/PR), the
class-confidence filter and memorization check of the synthetic set, and the model of CAS. Deterministic for a
seed on a given machine and thread count."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from synthaug.core.atomic import atomic_write_bytes
from synthaug.core.errors import InvalidInput
from synthaug.core.progress import ProgressFn
from synthaug.core.ranges import check_fields, ranged


@dataclass(frozen=True)
class ClassifierConfig:
    """Input shape, classes and training settings of the classifier."""

    channels: int = 1
    resolution: int = ranged(32, low=8, note="a multiple of 4")
    num_classes: int = ranged(10, low=2)
    width: int = 32
    feature_dim: int = 128
    epochs: int = 4
    batch_size: int = 128
    lr: float = 5e-3
    weight_decay: float = 5e-4
    flip: bool = True
    seed: int = 0
    shift: int = ranged(2, low=0, note="below resolution // 2")
    steps: int | None = ranged(None, low=1, optional=True, note="from epochs")
    val_every: int = ranged(0, low=0)
    extra_per_batch: int = ranged(0, low=0)
    extra_weight: float = ranged(1.0, low=0)
    extra_pretrain_steps: int = ranged(0, low=0, note="0: no pre-training")
    extra_separate_norm: bool = False
    balanced: bool = False

    def __post_init__(self) -> None:
        check_fields(self)
        if self.resolution % 4 or self.shift >= self.resolution // 2:
            raise InvalidInput(
                f"invalid ClassifierConfig: resolution must be a multiple of 4 and shift below resolution // 2 "
                f"({self.resolution // 2}), got resolution {self.resolution} and shift {self.shift}"
            )


class SmallCNN(nn.Module):
    """Three conv stages (BN, ReLU, max-pool after the first two), global average pool, a feature layer, logits."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())

        self.body = nn.Sequential(
            block(config.channels, w),
            block(w, w),
            nn.MaxPool2d(2),
            block(w, 2 * w),
            block(2 * w, 2 * w),
            nn.MaxPool2d(2),
            block(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.feature = nn.Sequential(nn.Linear(4 * w, config.feature_dim), nn.ReLU())
        self.head = nn.Linear(config.feature_dim, config.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer embedding (B×feature_dim): the metric feature space."""
        return self.feature(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B×num_classes)."""
        return self.head(self.features(x))


@dataclass
class ClassifierResult:
    """A trained classifier, its validation accuracy (None without a val set), loss per epoch and time taken.

    With `val_every`, `model` is the state of the best val accuracy seen, taken after step `best_step`."""

    model: SmallCNN
    val_accuracy: float | None
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    best_step: int | None = None
    steps: int = 0


def as_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images (0..255) → float in [-1, 1]; float images are returned as float32 unchanged."""
    if x.dtype == torch.uint8:
        return x.float().div_(127.5).sub_(1.0)
    return x.float()


def _check(x: torch.Tensor, y: torch.Tensor | None, config: ClassifierConfig, what: str) -> None:
    expected = (config.channels, config.resolution, config.resolution)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        raise InvalidInput(f"{what} images must be N×{'×'.join(map(str, expected))}, got {tuple(x.shape)}")
    if y is not None and y.is_floating_point():
        if tuple(y.shape) != (len(x), config.num_classes) or (len(y) and (y.min() < 0 or y.max() > 1)):
            raise InvalidInput(
                f"{what} soft labels must be {len(x)}×{config.num_classes} class probabilities, got {tuple(y.shape)}"
            )
    elif y is not None and (len(y) != len(x) or (len(y) and (y.min() < 0 or y.max() >= config.num_classes))):
        raise InvalidInput(f"{what} labels must be {len(x)} class indices in [0, {config.num_classes})")


def train_classifier(
    x: torch.Tensor,
    y: torch.Tensor,
    config: ClassifierConfig,
    *,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    progress: ProgressFn | None = None,
    extra: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> ClassifierResult:
    """Train SmallCNN on (x, y) with AdamW, one-cycle LR, random flips and shifts of up to `shift` pixels; report
    val accuracy.

    x: N×C×H×W uint8 or float in [-1, 1]; y: N class indices. The global RNG is left untouched.
    `config.steps` fixes the number of optimizer steps whatever N is (default: `epochs` passes over x).
    `config.val_every` > 0 measures val accuracy every that many steps (and at the end) and returns the best
    state. `extra` (e.g. synthetic images) adds `extra_per_batch` of its images to every batch, drawn from their
    own generator so the batches of x stay the same as without them, their loss weighted by `extra_weight`; its
    labels may be N×num_classes class probabilities instead of indices (soft targets: distillation from a teacher).
    With `extra_separate_norm` the extra images are forwarded on their own: batch norm normalises them by their own
    batch's statistics and they never move the running statistics the model is tested with (real images only).
    `extra_pretrain_steps` > 0 instead pre-trains on `extra` alone for that many steps, then trains on (x, y) only
    (pre-training then fine-tuning); the returned `steps` and `best_step` count both phases.
    `progress(step, total_steps, elapsed_s)` is called after every optimizer step (wrap it in `throttled`).
    """
    _check(x, y, config, "training")
    if len(x) < 2:
        raise InvalidInput(f"a classifier needs at least 2 training images, got {len(x)}")
    pretraining = extra is not None and config.extra_pretrain_steps > 0 and len(extra[0]) >= 2
    mixing = not pretraining and extra is not None and config.extra_per_batch > 0 and len(extra[0]) > 0
    if mixing or pretraining:
        _check(extra[0], extra[1], config, "extra training")
    start = time.monotonic()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = SmallCNN(config)
        rng = torch.Generator().manual_seed(config.seed)
        extra_rng = torch.Generator().manual_seed(config.seed + 1_000_003)
        pretrained = _pretrain(model, extra, config, extra_rng) if pretraining else 0
        total_steps = planned_steps(len(x), config)
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=total_steps)
        history: list[dict[str, float]] = []
        y = y.long()
        extra_order, extra_pos = torch.empty(0, dtype=torch.long), 0
        best: tuple[float, int, dict] | None = None
        selecting = bool(config.val_every) and val is not None and len(val[0]) > 0
        step, epoch = 0, 0
        while step < total_steps if config.steps is not None else epoch < config.epochs:
            model.train()
            order = _epoch_order(y, config.num_classes, rng, config.balanced)
            total, seen = 0.0, 0
            for i in range(0, len(x), config.batch_size):
                idx = order[i : i + config.batch_size]
                if len(idx) < 2:
                    continue
                xb = _augment(as_float(x[idx]), rng, config.flip, config.shift)
                if mixing:
                    if extra_pos + config.extra_per_batch > len(extra_order):
                        extra_order, extra_pos = torch.randperm(len(extra[0]), generator=extra_rng), 0
                    pick = extra_order[extra_pos : extra_pos + config.extra_per_batch]
                    extra_pos += len(pick)
                    xe = _augment(as_float(extra[0][pick]), extra_rng, config.flip, config.shift)
                    if config.extra_separate_norm:
                        out_real = model(xb)
                        with running_stats_frozen(model):
                            out_extra = model(xe)
                    else:
                        out = model(torch.cat([xb, xe]))
                        out_real, out_extra = out[: len(idx)], out[len(idx) :]
                    loss = F.cross_entropy(out_real, y[idx], label_smoothing=0.05)
                    extra_loss = _extra_loss(out_extra, extra[1][pick])
                    objective = loss + config.extra_weight * extra_loss
                else:
                    loss = F.cross_entropy(model(xb), y[idx], label_smoothing=0.05)
                    objective = loss
                opt.zero_grad(set_to_none=True)
                objective.backward()
                opt.step()
                sched.step()
                step += 1
                total, seen = total + loss.item() * len(idx), seen + len(idx)
                if progress is not None:
                    progress(step, total_steps, time.monotonic() - start)
                if selecting and (step % config.val_every == 0 or step == total_steps):
                    best = _keep_best(model, val, step, best, config.balanced)
                    model.train()
                if step >= total_steps:
                    break
            epoch += 1
            history.append({"epoch": float(epoch), "loss": total / max(seen, 1)})
    model.eval()
    if best is not None:
        model.load_state_dict(best[2])
        return ClassifierResult(
            model, best[0], history, time.monotonic() - start, pretrained + best[1], pretrained + step
        )
    score = balanced_accuracy if config.balanced else accuracy
    val_accuracy = score(model, *val) if val is not None and len(val[0]) else None
    return ClassifierResult(model, val_accuracy, history, time.monotonic() - start, None, pretrained + step)


@contextmanager
def running_stats_frozen(model: nn.Module) -> Iterator[None]:
    """Inside, training-mode batch norm still normalises by the batch's own statistics but leaves every running mean
    and variance (and the batch counter) as it was: a forward pass of images that must not shape test-time
    statistics."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(norms, saved, strict=True):
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)


def _pretrain(
    model: SmallCNN, extra: tuple[torch.Tensor, torch.Tensor], config: ClassifierConfig, rng: torch.Generator
) -> int:
    """Pre-train on the extra images alone for `extra_pretrain_steps` steps (own AdamW and one-cycle schedule, the
    same flips and shifts), before the real images fine-tune the model; returns the steps taken."""
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=config.extra_pretrain_steps)
    model.train()
    order, pos = torch.empty(0, dtype=torch.long), 0
    size = min(config.batch_size, len(extra[0]))
    for _ in range(config.extra_pretrain_steps):
        if pos + size > len(order):
            order, pos = torch.randperm(len(extra[0]), generator=rng), 0
        pick = order[pos : pos + size]
        pos += size
        out = model(_augment(as_float(extra[0][pick]), rng, config.flip, config.shift))
        opt.zero_grad(set_to_none=True)
        _extra_loss(out, extra[1][pick]).backward()
        opt.step()
        sched.step()
    return config.extra_pretrain_steps


def _extra_loss(out: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the extra images: with class indices (label-smoothed like the real images), or with class
    probabilities as they are (soft targets are smooth already)."""
    if targets.is_floating_point():
        return F.cross_entropy(out, targets.float())
    return F.cross_entropy(out, targets.long(), label_smoothing=0.05)


def planned_steps(num_train: int, config: ClassifierConfig) -> int:
    """Optimizer steps `train_classifier` takes on `num_train` images: `config.steps`, or `epochs` passes (a last
    batch of one image is skipped: batch norm needs two)."""
    if config.steps is not None:
        return config.steps
    return config.epochs * (num_train // config.batch_size + (num_train % config.batch_size >= 2))


def _epoch_order(y: torch.Tensor, num_classes: int, rng: torch.Generator, balanced: bool) -> torch.Tensor:
    """One epoch's image order: a permutation, or with `balanced` as many draws with replacement weighted by
    1 / class size, so every class is seen equally often (the usual fix for a long-tailed train split)."""
    if not balanced:
        return torch.randperm(len(y), generator=rng)
    counts = torch.bincount(y, minlength=num_classes).double()
    return torch.multinomial(1.0 / counts[y], len(y), replacement=True, generator=rng)


def _keep_best(
    model: SmallCNN,
    val: tuple[torch.Tensor, torch.Tensor],
    step: int,
    best: tuple[float, int, dict] | None,
    balanced: bool = False,
) -> tuple[float, int, dict]:
    """(val score, step, state) of the better of `best` and the model now; a tie goes to the later step. The score
    is accuracy, or balanced accuracy (the mean per-class recall) with `balanced`."""
    score = balanced_accuracy(model, *val) if balanced else accuracy(model, *val)
    if best is not None and score < best[0]:
        return best
    return score, step, {k: v.detach().clone() for k, v in model.state_dict().items()}


def _augment(x: torch.Tensor, rng: torch.Generator, flip: bool, shift: int = 2) -> torch.Tensor:
    """Random horizontal flip (when the classes allow it) and a shift of up to `shift` pixels (reflect padding)."""
    flips = torch.rand(len(x), generator=rng) < 0.5
    if flip:
        x = torch.where(flips[:, None, None, None], x.flip(3), x)
    if not shift:
        return x
    dy, dx = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=rng))
    padded = F.pad(x, (shift, shift, shift, shift), mode="reflect")
    h, w = x.shape[2:]
    return padded[:, :, shift + dy : shift + dy + h, shift + dx : shift + dx + w]


@torch.no_grad()
def _batched(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int, progress: ProgressFn | None = None
) -> torch.Tensor:
    """`fn` over x in batches; `progress(images done, total, elapsed_s)` after each batch."""
    start, outs = time.monotonic(), []
    for i in range(0, len(x), batch_size):
        outs.append(fn(as_float(x[i : i + batch_size])))
        if progress is not None:
            progress(min(i + batch_size, len(x)), len(x), time.monotonic() - start)
    return torch.cat(outs) if outs else torch.empty(0)


def logits(model: SmallCNN, x: torch.Tensor, batch_size: int = 512, progress: ProgressFn | None = None) -> torch.Tensor:
    """Class logits of images x (uint8 or [-1, 1] float), in eval mode."""
    _check(x, None, model.config, "classified")
    model.eval()
    return _batched(model, x, batch_size, progress)


def predict_proba(model: SmallCNN, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Softmax class probabilities (N×num_classes)."""
    return logits(model, x, batch_size).softmax(dim=1)


def extract_features(
    model: SmallCNN, x: torch.Tensor, batch_size: int = 512, progress: ProgressFn | None = None
) -> torch.Tensor:
    """Penultimate-layer features (N×feature_dim), float64 for the metric arithmetic."""
    _check(x, None, model.config, "feature")
    model.eval()
    return _batched(model.features, x, batch_size, progress).double()


def accuracy(
    model: SmallCNN, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512, progress: ProgressFn | None = None
) -> float:
    """Fraction of images whose arg-max class is the label."""
    _check(x, y, model.config, "evaluation")
    if not len(x):
        raise InvalidInput("cannot measure accuracy on an empty set")
    return float((logits(model, x, batch_size, progress).argmax(1) == y.long()).float().mean())


def per_class_recall(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[float | None]:
    """Share of each true class predicted as itself (None where the class has no images)."""
    out: list[float | None] = []
    for c in range(num_classes):
        members = labels == c
        out.append(float((predicted[members] == c).float().mean()) if members.any() else None)
    return out


def balanced_accuracy(model: SmallCNN, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Mean recall over the classes present in y: accuracy that a long-tailed val split cannot hide rare classes in."""
    _check(x, y, model.config, "evaluation")
    if not len(x):
        raise InvalidInput("cannot measure balanced accuracy on an empty set")
    recalls = per_class_recall(logits(model, x, batch_size).argmax(1), y.long(), model.config.num_classes)
    return float(sum(r for r in recalls if r is not None) / sum(r is not None for r in recalls))


def save_classifier(model: SmallCNN, path: Path, val_accuracy: float | None = None) -> Path:
    """Write config, weights and val accuracy atomically to `path` (torch.save format)."""
    buffer = io.BytesIO()
    torch.save({"config": asdict(model.config), "state": model.state_dict(), "val_accuracy": val_accuracy}, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def load_classifier(path: Path) -> tuple[SmallCNN, float | None]:
    """Read a classifier written by `save_classifier`; returns (model in eval mode, val accuracy)."""
    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        model = SmallCNN(ClassifierConfig(**data["config"]))
        model.load_state_dict(data["state"])
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise InvalidInput(f"{path} is not a readable classifier ({exc}): rematerialize feature_extractor") from exc
    return model.eval(), data.get("val_accuracy")
