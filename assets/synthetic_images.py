"""`synthetic_images`: per-class samples from the EMA generator of the latest GAN checkpoint, filtered for class
confidence and memorization of train images, published as an ImageFolder tree with a provenance manifest."""

from dagster import AssetExecutionContext, Config, DataVersion, MaterializeResult, MetadataValue
from pydantic import Field, ValidationInfo, field_validator

from assets.support import image_md, log_progress, model_asset, stage
from resources.compute import ComputeResource
from resources.storage import StorageResource
from synthaug.core.progress import log_parts
from synthaug.synthetic.generate import SyntheticSummary, generate_synthetic
from synthaug.synthetic.plan import ANCHORS, MODES, SyntheticConfig
from synthaug.synthetic.select import SELECTIONS

_DEFAULTS = SyntheticConfig()


class SyntheticImagesConfig(Config):
    """How many images per class, and the confidence and memorization filters (0 turns a filter off)."""

    mode: str = Field(_DEFAULTS.mode, description="'ratio' (ratio × real train count), 'balance' or 'count'.")
    ratio: float = Field(_DEFAULTS.ratio, ge=0, description="mode 'ratio': images per real train image of the class.")
    per_class: int = Field(_DEFAULTS.per_class, ge=0, description="mode 'count': images per class.")
    classes: list[str] = Field([], description="Class names to generate (empty: every class).")
    min_confidence: float = Field(
        _DEFAULTS.min_confidence,
        ge=0,
        le=1,
        description="Reject when the extractor's probability of the class is below this.",
    )
    memorization_ratio: float = Field(
        _DEFAULTS.memorization_ratio,
        ge=0,
        description="Reject when the nearest train image is closer in pixels than this × the real-vs-real distance.",
    )
    feature_memorization_ratio: float = Field(
        _DEFAULTS.feature_memorization_ratio,
        ge=0,
        description="The same in the feature extractor's space (stricter: small extractors crowd distinct images).",
    )
    max_shift: int = Field(
        _DEFAULTS.max_shift, ge=0, description="Pixels a copy may be shifted and still count as one."
    )
    oversample: float = Field(_DEFAULTS.oversample, ge=1, description="Extra candidates drawn per missing image.")
    max_rounds: int = Field(_DEFAULTS.max_rounds, ge=1, description="Sampling rounds before a class is reported short.")
    max_candidates: float = Field(
        _DEFAULTS.max_candidates,
        ge=1,
        description="At most this × the planned count is drawn per class (bounds the time).",
    )
    selection: str = Field(
        _DEFAULTS.selection,
        description="Which passing candidates enter the set: 'first' drawn, 'coverage' (those covering real images "
        "no chosen sample covers yet, in the extractor's space) or 'boundary' (the least confident).",
    )
    selection_pool: float = Field(
        _DEFAULTS.selection_pool,
        ge=1,
        description="'coverage'/'boundary': passing candidates drawn per planned image to choose from.",
    )
    latent_scale: float = Field(
        _DEFAULTS.latent_scale,
        gt=0,
        description="Standard deviation of the GAN's (or VAE's) latents: below 1 fewer, more typical samples; above 1 "
        "more varied ones (the filters still judge each). Keep 1 for a diffusion model.",
    )
    anchor: str = Field(
        _DEFAULTS.anchor,
        description="'none': candidates are prior draws; 'real': each varies a real train image of its class (its "
        "latent found by GAN inversion, then moved by anchor_spread × noise). GAN or VAE checkpoints only.",
    )
    anchor_spread: float = Field(
        _DEFAULTS.anchor_spread,
        gt=0,
        description="anchor 'real': standard deviation of the noise added to each real image's latent (larger: "
        "further from the image it varies).",
    )
    anchor_steps: int = Field(
        _DEFAULTS.anchor_steps, ge=1, description="anchor 'real': optimizer steps that invert each real image."
    )
    seed: int = Field(_DEFAULTS.seed, description="Seed of the latents (per round and class).")

    @field_validator("mode", "selection", "anchor")
    @classmethod
    def _choice(cls, value: str, info: ValidationInfo) -> str:
        allowed = {"mode": MODES, "selection": SELECTIONS, "anchor": ANCHORS}[info.field_name]
        if value not in allowed:
            raise ValueError(
                f"synthetic_images config: {info.field_name} must be one of {list(allowed)}, got {value!r}"
            )
        return value

    def core(self) -> SyntheticConfig:
        """The core's config (which checks the upper bounds too)."""
        return SyntheticConfig(**{**self.model_dump(), "classes": tuple(self.classes)})


@model_asset(
    ["gan_checkpoint", "feature_extractor"],
)
def synthetic_images(
    context: AssetExecutionContext, config: SyntheticImagesConfig, storage: StorageResource, compute: ComputeResource
) -> MaterializeResult:
    """Per-class samples of the latest GAN checkpoint's EMA generator, without low-confidence samples and copies of
    train images: an ImageFolder tree of PNGs plus manifest.parquet with provenance and filter scores."""
    with stage(storage, "synthetic_images") as layout:
        core = config.core()
        device = compute.resolve()
        context.log.info(f"sampling and nearest-neighbour search on {device.describe()}")
        progress = log_progress(context.log.info, "synthetic images")
        summary = generate_synthetic(
            layout, core, progress=progress, device=device.device, parts=log_parts(context.log.info)
        )
    for note in summary.notes:
        context.log.warning(note)
    return MaterializeResult(metadata=_metadata(summary), data_version=DataVersion(summary.data_version))


def _metadata(summary: SyntheticSummary) -> dict:
    """Counts, rates, provenance and the two pictures a person checks first."""
    totals, checkpoint = summary.totals, summary.meta["checkpoint"]
    memorization = summary.meta["filters"]["memorization"]
    metadata = {
        "path": MetadataValue.path(str(summary.path)),
        "images": totals["accepted"],
        "planned": totals["planned"],
        "candidates": totals["candidates"],
        "rejected": totals["rejected"],
        "shortfall": totals["shortfall"],
        "confidence_rejection_rate": totals["confidence_rejection_rate"],
        "memorized": totals["memorized"],
        "memorization_rate": totals["memorization_rate"],
        "confidence_filter": "on" if summary.meta["filters"]["confidence"]["enabled"] else "off",
        "memorization_reference": memorization["reference"],
        "memorization_false_alarm_rate_on_real": memorization["reference_false_alarm_rate"],
        "checkpoint_version": checkpoint["version"],
        "checkpoint_step": checkpoint["step"],
        "per_class": MetadataValue.md(_per_class_table(summary.per_class)),
    }
    metadata = {k: v for k, v in metadata.items() if v is not None}
    if summary.excluded:
        metadata["excluded_classes"] = MetadataValue.json(summary.excluded)
    if summary.notes:
        metadata["notes"] = MetadataValue.md("\n".join(f"- {n}" for n in summary.notes))
    if summary.grid_png:
        metadata["samples"] = MetadataValue.md(
            image_md("per class: real train images, then accepted synthetic ones", summary.grid_png)
        )
    if summary.rejected_png:
        metadata["rejected_samples"] = MetadataValue.md(
            image_md("per class: the nearest real train image, then the rejected sample", summary.rejected_png)
        )
    return metadata


def _per_class_table(per_class: dict[str, dict[str, int]]) -> str:
    """Markdown table: planned, candidates, accepted and rejected (by reason) per class."""
    lines = [
        "| class | planned | candidates | accepted | low confidence | memorized | not selected | short |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, c in per_class.items():
        lines.append(
            f"| {name} | {c['planned']} | {c['candidates']} | {c['accepted']} | {c['low_confidence']} "
            f"| {c['memorized']} | {c.get('not_selected', 0)} | {c['shortfall']} |"
        )
    return "\n".join(lines)
