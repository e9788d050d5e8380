"""The synthetic augmentation set: per-class samples from the EMA generator of the latest GAN checkpoint, filtered
for class confidence and memorization, published as an ImageFolder tree with a provenance manifest (the layout is
in `synthaug.synthetic.readback`; a new generation becomes current only once complete).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from synthaug.core.atomic import atomic_output, atomic_write_bytes
from synthaug.core.classes import MIN_TRAINABLE_IMAGES, ClassSelection, load_selection
from synthaug.core.errors import InvalidInput, MissingInput
from synthaug.core.layout import DataLayout
from synthaug.core.progress import Progress, ProgressFn, StageProgress
from synthaug.models.gan.inversion import check_invertible
from synthaug.models.gan.pipeline import load_sampler
from synthaug.models.gan.sampling import check_latent_scale
from synthaug.models.metrics.classifier import SmallCNN, load_classifier
from synthaug.models.stages import trained_on
from synthaug.synthetic.anchors import real_anchors
from synthaug.synthetic.candidates import CandidateRun
from synthaug.synthetic.filters import build_reference
from synthaug.synthetic.plan import SyntheticConfig, plan_counts
from synthaug.synthetic.readback import MANIFEST_NAME, MANIFEST_SCHEMA, META_NAME, synthetic_store
from synthaug.tensors.config import UNLABELED
from synthaug.tensors.norm_stats import NormStats, load_stats
from synthaug.tensors.readback import read_split


@dataclass
class SyntheticSummary:
    """What `generate_synthetic` published: the generation folder, its version, `meta.json`'s content and two
    pictures (PNG bytes): accepted samples beside real train images per class, and rejected samples beside their
    nearest real train image (empty when nothing was rejected)."""

    path: Path
    generation: str
    data_version: str
    meta: dict
    grid_png: bytes
    rejected_png: bytes = b""

    @property
    def totals(self) -> dict:
        """Candidates, accepted and rejected images, and the filters' counts and rates over every class."""
        return dict(self.meta["totals"])

    @property
    def per_class(self) -> dict[str, dict[str, int]]:
        """Planned, candidate, accepted, rejected (by reason) and shortfall counts per class name."""
        return {k: dict(v) for k, v in self.meta["per_class"].items()}

    @property
    def excluded(self) -> dict[str, int]:
        """Classes left out of generation (below the generator's minimum or emptied by cleaning): train images."""
        return dict(self.meta.get("excluded_classes", {}))

    @property
    def notes(self) -> list[str]:
        """What a person should know: filters skipped, a checkpoint older than the data, classes left short."""
        return list(self.meta["notes"])


def _load_extractor(
    layout: DataLayout, stats: NormStats, conditional: bool, config: SyntheticConfig, notes: list[str]
) -> SmallCNN | None:
    """The feature extractor when it fits these tensors; None (with a note) when the filters can do without it."""
    path = layout.feature_extractor_path()
    if not path.is_file():
        if conditional and config.min_confidence > 0:
            raise MissingInput(
                f"{path} is missing: the confidence filter needs it; materialize feature_extractor first "
                "(or set min_confidence to 0)"
            )
        notes.append("no feature extractor: memorization checked in pixel space only")
        return None
    extractor, _ = load_classifier(path)
    shape = (extractor.config.channels, extractor.config.resolution, extractor.config.resolution)
    fits = shape == (stats.channels, stats.size, stats.size) and extractor.config.num_classes == len(stats.classes)
    if fits:
        return extractor
    if conditional:
        raise InvalidInput(
            f"{path} was trained for {extractor.config.num_classes} classes of shape {shape}, the tensors have "
            f"{len(stats.classes)} classes of shape {(stats.channels, stats.size, stats.size)}: "
            "rematerialize feature_extractor"
        )
    notes.append(f"{path} does not fit these tensors: memorization checked in pixel space only")
    return None


def generated_classes(checkpoint_folder: Path, counts: dict[str, int]) -> ClassSelection:
    """The class selection `gan_checkpoint` saved beside the checkpoint; for a checkpoint from before selections,
    only the classes with fewer than `MIN_TRAINABLE_IMAGES` train images are left out."""
    saved = load_selection(checkpoint_folder)
    if saved is not None:
        return saved
    small = {name: n for name, n in counts.items() if n < MIN_TRAINABLE_IMAGES}
    return ClassSelection(dict(counts), MIN_TRAINABLE_IMAGES, small)


def generate_synthetic(
    layout: DataLayout,
    config: SyntheticConfig,
    progress: ProgressFn | None = None,
    device: torch.device | str | None = None,
    parts: StageProgress | None = None,
) -> SyntheticSummary:
    """Sample the planned images per class from the EMA generator of the latest checkpoint, filter them, and
    publish them as a new generation (see `synthaug.synthetic.readback` for the layout and `SyntheticConfig` for the
    rules).

    Raises FileNotFoundError when there is no checkpoint ("materialize gan_checkpoint first"), no statistics or
    (with the confidence filter on) no feature extractor; ValueError for an impossible plan or a generator that
    does not know the tensors' classes. `progress(accepted, planned, elapsed_s)` reports as images are accepted,
    `parts` the memorization reference's features before any is sampled.
    `device` (default CPU) runs the generator and the nearest-neighbour searches; the extractor stays on CPU.
    """
    sampler, checkpoint = load_sampler(layout.gan_checkpoints_dir())
    sampler = sampler.to(device)
    stats = load_stats(layout)
    notes: list[str] = []
    known = int(sampler.config.num_classes)
    conditional = known > 0
    if conditional and known != len(stats.classes):
        unseen = list(stats.classes[known:])
        raise InvalidInput(
            f"the generator of checkpoint {checkpoint.path} knows {known} classes, the training tensors have "
            f"{len(stats.classes)} {list(stats.classes)}"
            + (f"; the generator never saw {unseen}" if unseen else "")
            + ": rematerialize gan_checkpoint"
        )
    shape = (stats.channels, stats.size, stats.size)
    if (sampler.config.channels, sampler.config.resolution, sampler.config.resolution) != shape:
        raise InvalidInput(
            f"the generator of checkpoint {checkpoint.path} makes images of shape "
            f"{(sampler.config.channels, sampler.config.resolution, sampler.config.resolution)}, the training "
            f"tensors are {shape}: rematerialize gan_checkpoint"
        )
    check_latent_scale(sampler, config.latent_scale, f"the generator of checkpoint {checkpoint.path}")
    if config.anchor == "real":
        check_invertible(sampler, f"the generator of checkpoint {checkpoint.path}")
    if not trained_on(checkpoint.state.get("data_version"), stats):
        notes.append(
            f"checkpoint {checkpoint.version} was trained before the training tensors last changed: "
            "rematerialize gan_checkpoint for a generator that saw every batch"
        )
    train_x, train_y = read_split(layout, stats, "train")
    if conditional:
        counts = {name: int((train_y == i).sum()) for i, name in enumerate(stats.classes)}
    else:
        if config.classes:
            raise InvalidInput(
                f"the generator of checkpoint {checkpoint.path} is unconditional (trained without classes), so it "
                f"cannot make classes {list(config.classes)}: leave `classes` empty"
            )
        counts = {"": len(train_x)}
        notes.append("unconditional generator: images are unlabeled and the confidence filter is skipped")
    selection = generated_classes(checkpoint.path.parent, counts) if conditional else None
    excluded = selection.excluded if selection is not None else {}
    if selection is not None and selection.warning():
        notes.append(selection.warning())
    plan = plan_counts(counts, config, excluded)
    extractor = _load_extractor(layout, stats, conditional, config, notes)
    if conditional and extractor is not None and config.min_confidence == 0:
        notes.append("confidence filter off (min_confidence 0)")
    if config.selection != "first" and (extractor is None or (config.selection == "boundary" and not conditional)):
        raise InvalidInput(
            f"selection {config.selection!r} needs "
            + ("the feature extractor" if extractor is None else "a class-conditional generator")
            + ": materialize feature_extractor (and a conditional gan_checkpoint), or use selection 'first'"
        )
    affine = stats.affine("gan")
    val_x, _ = read_split(layout, stats, "val")
    reference = build_reference(train_x, val_x, config, extractor, affine, device, parts)
    anchors = None
    if config.anchor == "real":
        labels = [stats.class_to_index[n] for n, k in plan.items() if k > 0] if conditional else [UNLABELED]
        inverted = parts("anchors: real train images inverted") if parts is not None else None
        anchors = real_anchors(
            sampler, train_x, train_y, labels, affine, steps=config.anchor_steps, seed=config.seed, progress=inverted
        )
    store = synthetic_store(layout)
    with store.draft() as draft:
        run = CandidateRun(
            config,
            plan,
            conditional,
            stats,
            checkpoint.version,
            checkpoint.step,
            draft.folder,
            train_labels=train_y,
            anchors=anchors,
        )
        run.sample(sampler, reference, extractor, affine, Progress(progress, sum(plan.values())), device)
        meta = run.meta(shape, checkpoint.path, checkpoint.state.get("data_version"), reference, notes)
        meta["excluded_classes"] = excluded
        if anchors is not None:
            meta["anchors"] = anchors.describe(stats.classes)
        with atomic_output(draft.folder / MANIFEST_NAME) as tmp:
            pq.write_table(pa.Table.from_pylist(run.rows, schema=MANIFEST_SCHEMA), tmp)
        manifest_digest = hashlib.sha256((draft.folder / MANIFEST_NAME).read_bytes()).hexdigest()
        meta["manifest_sha256"] = manifest_digest
        atomic_write_bytes(draft.folder / META_NAME, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
    data_version = manifest_digest[:16]
    store.publish(draft.name, data_version)
    grid, rejected = run.pictures(train_x, train_y, shape)
    return SyntheticSummary(store.path(draft.name), draft.name, data_version, meta, grid, rejected)
