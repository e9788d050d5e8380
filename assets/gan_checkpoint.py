"""`gan_checkpoint`: the class-conditional GAN (or VAE or diffusion model) trained on every batch's train split,
resumable, in the `gpu` pool so two trainings never overlap; loss curve, sample grid and quality metrics in the UI."""

from dataclasses import replace

from dagster import AssetExecutionContext, Config, DataVersion, MaterializeResult, MetadataValue
from pydantic import Field

from assets.support import image_md, model_asset, stage
from resources.compute import ComputeResource
from resources.storage import StorageResource
from synthaug.core.classes import MIN_CLASS_IMAGES, MIN_TRAINABLE_IMAGES, ClassSelection
from synthaug.core.progress import log_parts
from synthaug.models.gan.config import Budget, TrainConfig, describe_progress
from synthaug.models.gan.pipeline import GanRun
from synthaug.models.metrics.prdc import PRDC, is_per_class, per_class_table, worst_class
from synthaug.models.stages import MIN_METRIC_IMAGES, gan_train_config, generation_classes, train_gan_checkpoint
from synthaug.tensors.norm_stats import load_stats
from synthaug.tensors.readback import mirror_setting

GPU_POOL = "gpu"  # the instance configs give every pool one slot: one training at a time
GPU_TAGS = {"dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": 1}}}}}


class GanCheckpointConfig(Config):
    """Model family and size, and the training budget (steps and/or minutes, summed over resumed runs)."""

    family: str = Field(
        "gan",
        description="'gan' (projection-D SN hinge cGAN), 'vae' (conditional VAE) or 'diffusion' (class-conditional "
        "DDPM with a small UNet, sampled by DDIM in `sample_steps` steps: built for coverage, slower to sample).",
    )
    width: int = Field(
        16,
        ge=1,
        description="Base channel width of both networks (16: on 2 CPU cores it reaches class-recognizable samples "
        "within the default budget; 32 or more on a GPU).",
    )
    z_dim: int = Field(128, ge=1, description="Latent size.")
    batch_size: int = Field(64, ge=1, description="Real images per step.")
    budget_minutes: float | None = Field(
        6.0,
        description="Stop after this many training minutes (None: no limit). 6 keeps the main command within 15 "
        "minutes on 2 CPU cores; the GAN is still improving then, so give it more where time allows.",
    )
    budget_steps: int | None = Field(None, description="Stop after this many steps (None: no limit).")
    checkpoint_every: int = Field(
        500, ge=1, description="Steps between checkpoints; a killed run resumes from the last."
    )
    metric_samples_per_class: int = Field(200, ge=1, description="Generated images per class for FID/KID/PR/CAS.")
    aux_class_weight: float = Field(
        0.0, ge=0, description="Weight of an auxiliary class loss on the discriminator's features (AC-GAN); 0 = off."
    )
    minibatch_std: bool = Field(
        TrainConfig.minibatch_std,
        description="family 'gan': give the discriminator a minibatch-standard-deviation channel (StyleGAN), so it "
        "can tell a batch of near-identical fakes from varied reals (against mode collapse).",
    )
    mode_seeking: float = Field(
        TrainConfig.mode_seeking,
        ge=0,
        description="family 'gan': weight of a mode-seeking term (Mao et al. 2019) against mode collapse; 0 = off.",
    )
    ada_target: float = Field(
        TrainConfig.ada_target,
        ge=0,
        lt=1,
        description="family 'gan': adapt DiffAugment's strength (ADA, Karras et al. 2020) to hold the share of real "
        "images the discriminator calls real at this target (ADA uses 0.6); 0 = DiffAugment on every image.",
    )
    mirror: str = Field(
        "off",
        description="Train on real images flipped left-right at random as well (StyleGAN's x-flips: twice the "
        "images for a small train set). 'auto': only where training_tensors' augmentation flips (classes that look "
        "the same mirrored); 'on'; 'off'.",
    )
    lecam_weight: float = Field(
        TrainConfig.lecam_weight,
        ge=0,
        description="family 'gan': weight of LeCam regularisation (Tseng et al. 2021), which keeps the "
        "discriminator's real and fake scores near each other's running means so it cannot memorise a small train "
        "set; 0 = off.",
    )
    sample_steps: int = Field(
        TrainConfig.sample_steps,
        ge=1,
        description="family 'diffusion': DDIM steps per sample (more: slower, slightly sharper); changing it "
        "resamples the same trained model.",
    )
    guidance: float = Field(
        TrainConfig.guidance,
        ge=0,
        description="family 'diffusion': classifier-free guidance scale; 1 = plain conditional sampling (most "
        "varied), above 1 = more typical of the class (higher precision, lower recall, twice the sampling cost).",
    )
    class_balance: str = Field(
        "auto",
        description="'auto': on a long-tailed train split (largest class >= 3x the smallest, up to 2 GiB of pixels) "
        "every batch is drawn class-balanced, so rare classes are learnt (unbalanced, their samples came out as the "
        "frequent classes); 'on' always; 'off' never.",
    )
    min_class_images: int = Field(
        MIN_CLASS_IMAGES,
        ge=MIN_TRAINABLE_IMAGES,
        description="Fewest train images of a class to generate it: smaller classes (and classes cleaning emptied) "
        "are left out of generation with a warning, every other class is generated (below ~10 the generator "
        "reproduces the few images and the memorization filter rejects nearly every candidate). When no class "
        "reaches it, every class with 2 or more images is generated, with a warning.",
    )
    seed: int = Field(0, description="Seed of initialization, batches and samples.")

    def budget(self) -> Budget:
        """The core's budget; raises ValueError when neither steps nor minutes are set."""
        return Budget(steps=self.budget_steps, minutes=self.budget_minutes, checkpoint_every=self.checkpoint_every)


@model_asset(
    ["normalization_stats", "feature_extractor"],
    pool=GPU_POOL,
    op_tags=GPU_TAGS,
)
def gan_checkpoint(
    context: AssetExecutionContext, config: GanCheckpointConfig, storage: StorageResource, compute: ComputeResource
) -> MaterializeResult:
    """Class-conditional GAN (projection discriminator, spectral norm, hinge loss, EMA generator, DiffAugment) trained
    on the train split of every batch; resumes from its last checkpoint after a crash."""
    with stage(storage, "gan_checkpoint") as layout:
        budget = config.budget()
        device = compute.resolve()
        stats = load_stats(layout)
        train_config = replace(
            gan_train_config(stats, config.family, config.width, config.z_dim, config.seed, config.aux_class_weight),
            sample_steps=config.sample_steps,
            guidance=config.guidance,
            minibatch_std=config.minibatch_std,
            mode_seeking=config.mode_seeking,
            ada_target=config.ada_target,
            lecam_weight=config.lecam_weight,
            mirror=mirror_setting(config.mirror, layout, stats.batches),
        )
        selection = (
            generation_classes(layout, stats, config.min_class_images) if train_config.model.num_classes else None
        )
        if selection is not None and selection.warning():
            context.log.warning(selection.warning())
        mirrored = ", real images mirrored at random" if train_config.mirror else ""
        context.log.info(f"training {config.family} on {device.describe()} for {budget.describe()}{mirrored}")
        run = train_gan_checkpoint(
            layout,
            stats,
            train_config,
            budget,
            batch_size=config.batch_size,
            compute=device,
            progress=lambda p: context.log.info(describe_progress(p)),
            metric_samples_per_class=config.metric_samples_per_class,
            seed=config.seed,
            selection=selection,
            metric_progress=log_parts(context.log.info),
            class_balance=config.class_balance,
        )
    if run.train.resumed_from_step is not None:
        context.log.info(
            f"resumed from step {run.train.resumed_from_step}, the newest valid checkpoint of this version"
        )
    metadata = {
        "path": MetadataValue.path(str(layout.gan_checkpoints_dir() / run.train.version)),
        "checkpoint": MetadataValue.path(str(run.checkpoint)),
        "num_train_images": stats.num_train,
        **{k: v for k, v in run.metadata().items() if v is not None and not is_per_class(k)},
        "loss_curve": MetadataValue.md(image_md("loss curve", run.loss_curve_png)),
        **_class_metadata(run, list(stats.classes), selection),
    }
    if not run.metrics:
        context.log.warning(
            "quality metrics skipped: they need a materialized feature_extractor and at least "
            f"{MIN_METRIC_IMAGES} labeled val and test images"
        )
    if run.sample_grid_png:
        metadata["samples"] = MetadataValue.md(
            image_md("per class: real images, then generated ones", run.sample_grid_png)
        )
    return MaterializeResult(metadata=metadata, data_version=DataVersion(f"{run.train.version}-{run.train.step}"))


def _class_metadata(run: GanRun, classes: list[str], selection: ClassSelection | None) -> dict:
    """The classes left out of generation, the generated class with the lowest recall and a per-class table."""
    metadata: dict = {}
    if selection is not None and selection.excluded:
        metadata["excluded_classes"] = MetadataValue.json(selection.excluded)
        metadata["excluded_classes_note"] = selection.warning()
    generated = {i for i, name in enumerate(classes) if selection is None or name not in selection.excluded}
    table = per_class_table(run.metrics)
    worst = worst_class(run.metrics, generated)
    if worst is not None:
        recall = table[worst]["recall"]
        metadata |= {
            "worst_class": classes[worst],
            "worst_class_recall": recall.value,
            "worst_class_recall_floor": recall.floor,
        }
    if table:
        rows = [
            f"| {classes[i]}{'' if i in generated else ' (not generated)'} | "
            + " | ".join(f"{row[m].value:.3f} ({row[m].floor:.3f})" for m in PRDC)
            + f" | {row['recall'].n} |"
            for i, row in table.items()
        ]
        header = "| class | precision | recall | density | coverage | n |\n|---|---:|---:|---:|---:|---:|\n"
        metadata["per_class_quality"] = MetadataValue.md(
            "In the feature extractor's space, real-vs-real floor in brackets.\n\n" + header + "\n".join(rows)
        )
    return metadata
