"""The two model stages behind the `feature_extractor` and `gan_checkpoint` assets: which tensors they read,
how they are versioned, and what they hand back for the UI. The training itself lives in `synthaug.models.gan` and
`synthaug.models.metrics`."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from synthaug.core.classes import (
    MIN_CLASS_IMAGES,
    ClassSelection,
    balanced_sampling,
    check_trainable,
    save_selection,
    select_generated,
)
from synthaug.core.compute import Compute
from synthaug.core.errors import InvalidInput
from synthaug.core.layout import DataLayout
from synthaug.core.progress import StageProgress
from synthaug.models.balanced import balanced_batches
from synthaug.models.gan.config import Budget, TrainConfig, TrainProgress
from synthaug.models.gan.networks import ModelConfig
from synthaug.models.gan.pipeline import EvalData, GanRun, train_gan
from synthaug.models.gan.sampling import sample_per_class
from synthaug.models.gan.training import BatchSource
from synthaug.models.metrics.classifier import (
    ClassifierConfig,
    SmallCNN,
    load_classifier,
    save_classifier,
    train_classifier,
)
from synthaug.models.metrics.fid import MetricValue
from synthaug.models.metrics.registry import MetricInputs, compute_metrics
from synthaug.models.metrics.store import save_metrics
from synthaug.tensors.loader import ShardDataset, ShardLoader, normalize
from synthaug.tensors.norm_stats import NormStats
from synthaug.tensors.readback import current_tensors, read_split

Images = tuple[torch.Tensor, torch.Tensor]
MIN_METRIC_IMAGES = 20  # below this many val or test images the metrics (k-NN, covariances) mean nothing
BALANCED_SUFFIX = "-balanced"  # marks the data version of a generator trained on class-balanced batches
CAS_MAX_FAKES = 20_000  # the most generated images CAS samples to match the extractor's train split (see below)


def data_version(stats: NormStats) -> str:
    """Version of everything the model stages read: the statistics document names every batch's tensors."""
    return hashlib.sha256(stats.to_json()).hexdigest()[:16]


def gan_data_version(stats: NormStats, balanced: bool) -> str:
    """The data version a generator checkpoint records: `data_version`, marked when its batches were class-balanced
    (another sampling of the same tensors, so another checkpoint lineage: resume never mixes the two)."""
    return data_version(stats) + (BALANCED_SUFFIX if balanced else "")


def trained_on(version: str | None, stats: NormStats) -> bool:
    """Whether a checkpoint's recorded data version names these tensors, however its batches were drawn (None: a
    checkpoint that recorded none, taken as current)."""
    return version is None or version.removesuffix(BALANCED_SUFFIX) == data_version(stats)


def load_split(layout: DataLayout, stats: NormStats, split: str, *, limit: int | None = None, seed: int = 0) -> Images:
    """Every labeled image of one split over all batches as [-1, 1] floats and label indices (`limit`: a random
    sample of at most that many, fixed by `seed`); classes follow `read_split`'s rule."""
    pixels, labels = read_split(layout, stats, split, labeled_only=True)
    scale, offset = stats.affine("gan")
    x, y = torch.from_numpy(normalize(pixels, scale, offset)), torch.from_numpy(labels)
    if limit is not None and len(x) > limit:
        pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:limit]
        x, y = x[pick], y[pick]
    return x, y


@dataclass(frozen=True)
class ExtractorSummary:
    """What `train_feature_extractor` did: where the model is, its val accuracy, the sizes, the time, the steps it
    trained and the step whose state it kept (None without a val split)."""

    path: Path
    val_accuracy: float | None
    num_train: int
    num_val: int
    seconds: float
    version: str
    steps: int = 0
    best_step: int | None = None
    balanced: bool = False


def extractor_steps(num_train: int, config: ClassifierConfig, min_steps: int) -> int:
    """Optimizer steps of the feature extractor: `config.epochs` passes over the train split, but at least
    `min_steps`. A small data set needs the floor: at 814 train images 4 epochs are 28 steps, val accuracy 0.67,
    and the confidence filter then rejected every synthetic coat, shirt and T-shirt (real ones scored below 0.5
    too); 200 to 800 steps reached 0.85 to 0.88."""
    return max(min_steps, config.epochs * -(-num_train // config.batch_size))


def train_feature_extractor(
    layout: DataLayout,
    stats: NormStats,
    config: ClassifierConfig,
    progress: Callable[[int, int, float], None] | None = None,
    *,
    min_steps: int = 0,
    evaluations: int = 8,
    class_balance: str = "auto",
) -> ExtractorSummary:
    """Train the classifier on the clean real train split of every batch for `extractor_steps`, keep the state of
    the best of `evaluations` checks on the val split (when there is one), save it. Refuses data no model can learn
    from (`check_model_inputs`) before reading any pixels. On a long-tailed split (`class_balance` 'auto') it samples
    classes equally and keeps the best balanced accuracy: trained on the plain prior, its probabilities of the rare
    classes stay low, and the synthetic set's confidence filter rejected every candidate of those classes."""
    check_model_inputs(layout, stats)
    if min_steps < 0 or evaluations < 1:
        raise InvalidInput(
            f"feature extractor min_steps ({min_steps}) must be >= 0 and evaluations ({evaluations}) >= 1"
        )
    train_x, train_y = load_split(layout, stats, "train")
    val = load_split(layout, stats, "val")
    steps = extractor_steps(len(train_x), config, min_steps)
    config = replace(
        config,
        balanced=balanced_sampling(class_balance, list(class_counts(layout, stats).values())),
        channels=stats.channels,
        resolution=stats.size,
        num_classes=len(stats.classes),
        steps=steps,
        val_every=max(1, steps // evaluations) if len(val[0]) else 0,
    )
    result = train_classifier(train_x, train_y, config, val=val if len(val[0]) else None, progress=progress)
    path = save_classifier(result.model, layout.feature_extractor_path(), result.val_accuracy)
    return ExtractorSummary(
        path,
        result.val_accuracy,
        len(train_x),
        len(val[0]),
        result.seconds,
        data_version(stats),
        result.steps,
        result.best_step,
        config.balanced,
    )


def gan_train_config(
    stats: NormStats, family: str, width: int, z_dim: int, seed: int, aux_class_weight: float = 0.0
) -> TrainConfig:
    """The training config for the tensors described by `stats` (conditional when they carry 2+ classes; the
    auxiliary class loss applies only then)."""
    classes = len(stats.classes) if len(stats.classes) >= 2 else 0
    model = ModelConfig(resolution=stats.size, channels=stats.channels, num_classes=classes, width=width, z_dim=z_dim)
    aux = aux_class_weight if classes and family == "gan" else 0.0
    return TrainConfig(model=model, family=family, seed=seed, aux_class_weight=aux)


def train_gan_checkpoint(
    layout: DataLayout,
    stats: NormStats,
    config: TrainConfig,
    budget: Budget,
    *,
    batch_size: int = 64,
    compute: Compute | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
    metric_samples_per_class: int = 200,
    seed: int = 0,
    selection: ClassSelection | None = None,
    metric_progress: StageProgress | None = None,
    class_balance: str = "auto",
) -> GanRun:
    """Train or resume the generator on the train split of every batch, then sample, plot and measure it in the
    feature extractor's space (val split as reference, a train sample for the floors, test split for CAS), per
    class too. A conditional run saves `selection` (default: `generation_classes`) beside its checkpoints for
    `synthetic_images`.

    Metrics are left out (the result's `metrics` is empty) when there is no feature extractor yet or the val or
    test split holds fewer than `MIN_METRIC_IMAGES` images; they are saved beside the checkpoint (`metrics.store`)
    and `metric_progress` reports them as they go. On a long-tailed split (`class_balance` 'auto') the batches are
    class-balanced (`synthaug.models.balanced`), which is part of the checkpoint version."""
    labeled_only = config.model.num_classes > 0
    if labeled_only and selection is None:
        selection = generation_classes(layout, stats)
    dataset = ShardDataset(
        layout, stats, splits=("train",), normalization="gan", batch_size=batch_size, seed=seed,
        drop_last=True, labeled_only=labeled_only,
    )  # fmt: skip
    if dataset.num_rows < batch_size:
        raise InvalidInput(
            f"the train split holds {dataset.num_rows} images, fewer than one batch of {batch_size}: "
            "land more images or lower batch_size"
        )
    counts = class_counts(layout, stats) if labeled_only else None
    balanced = None
    if counts is not None and balanced_sampling(class_balance, list(counts.values())):
        balanced = balanced_batches(layout, stats, dataset.num_rows, batch_size, seed)
    source: BatchSource = ShardLoader(dataset) if balanced is None else balanced
    version = gan_data_version(stats, balanced is not None)
    eval_data, extractor, metrics = None, None, ()
    if labeled_only:
        per_class = metric_samples_per_class * max(len(stats.classes), 1)
        eval_data = EvalData(
            reference=load_split(layout, stats, "val", limit=per_class, seed=seed),
            real=load_split(layout, stats, "train", limit=per_class, seed=seed + 1),
            test=load_split(layout, stats, "test", limit=per_class, seed=seed + 2),
        )
        smallest = min(len(eval_data.reference[0]), len(eval_data.test[0]))
        if layout.feature_extractor_path().is_file() and smallest >= MIN_METRIC_IMAGES:
            extractor, _ = load_classifier(layout.feature_extractor_path())
            metrics = ("fid", "kid", "pr", "pr_class", "cas")
    run = train_gan(
        source,
        config,
        layout.gan_checkpoints_dir(),
        version,
        budget,
        compute=compute,
        progress=progress,
        class_names=list(stats.classes),
        class_counts=counts,
        eval_data=eval_data,
        seed=seed,
    )
    if extractor is not None:
        run.metrics = measure_generator(
            run.train.sampler,
            eval_data,
            extractor,
            metrics,
            metric_samples_per_class,
            seed,
            metric_progress,
            train_counts=[counts[name] for name in stats.classes],
        )
        save_metrics(layout.gan_checkpoints_dir() / run.train.version, run.train.step, data_version(stats), run.metrics)
    if selection is not None:
        save_selection(layout.gan_checkpoints_dir() / run.train.version, selection)
    run.class_balanced = balanced is not None
    return run


def measure_generator(
    sampler: torch.nn.Module,
    eval_data: EvalData,
    extractor: SmallCNN,
    names: Sequence[str],
    per_class: int,
    seed: int,
    progress: StageProgress | None = None,
    *,
    train_counts: Sequence[int] | None = None,
) -> dict[str, MetricValue]:
    """Sample `per_class` images of every class and measure them against `eval_data` in the extractor's space
    (`compute_metrics`); `progress` reports the sampling, the features and CAS as they go.

    CAS trains its classifiers with the extractor's recipe. Given the extractor's train images per class
    (`train_counts`, at most CAS_MAX_FAKES in all), CAS's generated set has those counts and the extractor itself is
    the real arm: another classifier of the same recipe on as many real images would be the same model trained
    twice. Otherwise both arms train on the metric samples' size."""
    classes = range(sampler.config.num_classes)
    matched = train_counts is not None and sum(train_counts) <= CAS_MAX_FAKES
    wanted = [max(per_class, train_counts[c]) if matched else per_class for c in classes]
    sampled = progress("metric samples") if progress is not None else None
    start, drawn = time.monotonic(), []
    for c in classes:  # the first `per_class` of a class are the same images whatever `wanted` is
        drawn.append(sample_per_class(sampler, wanted[c], classes=[c], seed=seed + 1 + c))
        if sampled is not None:
            sampled(sum(wanted[: c + 1]), sum(wanted), time.monotonic() - start)

    def first(counts: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The first `counts[c]` images drawn of every class c, and their labels."""
        picked = [(x[:n], y[:n]) for (x, y), n in zip(drawn, counts, strict=True)]
        return torch.cat([x for x, _ in picked]), torch.cat([y for _, y in picked])

    inputs = MetricInputs(
        extractor=extractor,
        fake=first([per_class] * len(classes)),
        real=eval_data.real,
        reference=eval_data.reference,
        test=eval_data.test,
        classifier_config=replace(extractor.config, seed=seed),
        cas_fake=first(train_counts) if matched else None,
        cas_real_model=extractor if matched else None,
        progress=progress,
    )
    return compute_metrics(names, inputs)


def class_counts(layout: DataLayout, stats: NormStats) -> dict[str, int]:
    """Train images per class name over every batch, from each batch's tensor metadata (no pixels read)."""
    counts = dict.fromkeys(stats.classes, 0)
    for batch_id in stats.batches:
        tensor_set = current_tensors(layout, batch_id)
        for name, n in (tensor_set.meta["per_class"]["train"] if tensor_set else {}).items():
            if name in counts:
                counts[name] += n
    return counts


def emptied_classes(layout: DataLayout, stats: NormStats) -> list[str]:
    """Classes landed in some batch that cleaning removed every image of, so the tensors do not know them (read
    from each batch's clean manifest labels; a batch without one adds none)."""
    landed: set[str] = set()
    for batch_id in stats.batches:
        path = layout.clean_manifest(batch_id)
        if path.is_file():
            labels = pc.unique(pq.read_table(path, columns=["label"])["label"]).to_pylist()
            landed.update(str(label) for label in labels if label is not None)
    return sorted(landed - set(stats.classes))


def check_model_inputs(layout: DataLayout, stats: NormStats) -> None:
    """The preconditions every model stage checks at its start, in seconds: labeled train images of at least 2
    classes (`synthaug.core.classes.check_trainable`; the error names every class and its count)."""
    check_trainable(class_counts(layout, stats), emptied_classes(layout, stats))


def generation_classes(
    layout: DataLayout, stats: NormStats, min_class_images: int = MIN_CLASS_IMAGES
) -> ClassSelection:
    """Which classes the generator makes and which it leaves out (below `min_class_images` train images, or
    emptied by cleaning); raises like `check_model_inputs` first."""
    return select_generated(class_counts(layout, stats), min_class_images, emptied_classes(layout, stats))
