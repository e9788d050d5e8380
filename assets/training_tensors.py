"""`training_tensors`: the kept images of a batch, split by content, resized, augmented (train only), as shards."""

from dagster import (
    AssetExecutionContext,
    Config,
    DataVersion,
    MaterializeResult,
    MetadataValue,
)
from pydantic import Field

from assets.support import batch_asset, core_config, log_progress, writing
from resources.storage import StorageResource
from synthaug.core.layout import DataLayout
from synthaug.core.thumbnails import gallery_markdown
from synthaug.tensors.augment import AugmentPolicy
from synthaug.tensors.build import TensorSummary, build_tensors
from synthaug.tensors.config import TensorConfig
from synthaug.tensors.readback import augmentation_examples, current_tensors
from synthaug.tensors.splits import SplitRatios

_DEFAULTS = TensorConfig()
_RATIOS = SplitRatios()
EXAMPLES = 6
_POLICY_FIELDS = [name for name in AugmentPolicy.__dataclass_fields__ if name not in ("channels", "seed")]


class TrainingTensorsConfig(Config):
    """Resolution, channels, split ratios and the augmentation policy (unset fields: defaults per image type)."""

    size: int = Field(_DEFAULTS.size, description="Side of the square output images in pixels.")
    channels: int = Field(_DEFAULTS.channels, description="1 (grey) or 3 (RGB); other images are converted.")
    copies: int = Field(_DEFAULTS.copies, description="Augmented copies per train image (0: none).")
    fit: str = Field(_DEFAULTS.fit, description="Non-square images: 'center_crop', 'pad' or 'stretch'.")
    train_ratio: float = Field(_RATIOS.train, description="Share of images in the train split (by content hash).")
    val_ratio: float = Field(_RATIOS.val, description="Share of images in the val split.")
    test_ratio: float = Field(_RATIOS.test, description="Share of images in the test split.")
    shard_size: int = Field(_DEFAULTS.shard_size, description="Images per .npy shard.")
    workers: int = Field(0, ge=0, description="Worker processes; 0 uses every CPU core.")
    augment_seed: int = Field(0, description="Mixed into every copy's seed; change it for a different draw.")
    hflip_p: float | None = Field(None, description="Horizontal flip probability.")
    vflip_p: float | None = Field(None, description="Vertical flip probability (default 0).")
    affine_p: float | None = Field(None, description="Shift/scale/rotate probability.")
    shift_limit: float | None = Field(None, description="Largest shift, a fraction of the side.")
    scale_limit: float | None = Field(None, description="Largest scale change, a fraction.")
    rotate_limit: float | None = Field(None, description="Largest rotation in degrees.")
    border: str | None = Field(None, description="Fill outside the image: 'constant', 'reflect', 'replicate'.")
    crop_p: float | None = Field(None, description="Random resized crop probability.")
    crop_scale_min: float | None = Field(None, description="Smallest area share a crop keeps.")
    brightness_contrast_p: float | None = Field(None, description="Brightness/contrast jitter probability.")
    brightness_limit: float | None = Field(None, description="Largest brightness change (fraction of 255).")
    contrast_limit: float | None = Field(None, description="Largest contrast change (fraction).")
    noise_p: float | None = Field(None, description="Gaussian noise probability.")
    noise_std_min: float | None = Field(None, description="Smallest noise std (fraction of 255).")
    noise_std_max: float | None = Field(None, description="Largest noise std (fraction of 255).")
    colour_p: float | None = Field(None, description="Hue/saturation jitter probability (RGB only).")
    hue_shift_limit: float | None = Field(None, description="Largest hue shift (OpenCV units).")
    saturation_limit: float | None = Field(None, description="Largest saturation shift.")

    def tensor_config(self) -> TensorConfig:
        """The core's configuration; raises ValueError naming the first invalid field."""
        overrides = {name: getattr(self, name) for name in _POLICY_FIELDS} | {"seed": self.augment_seed}
        return TensorConfig(
            size=self.size,
            channels=self.channels,
            copies=self.copies,
            fit=self.fit,
            ratios=SplitRatios(self.train_ratio, self.val_ratio, self.test_ratio),
            policy=AugmentPolicy.from_overrides(self.channels, overrides),
            shard_size=self.shard_size,
        )


@batch_asset(
    "tensors",
    {"python", "numpy"},
    deps=["clean_images"],
)
def training_tensors(
    context: AssetExecutionContext, config: TrainingTensorsConfig, storage: StorageResource
) -> MaterializeResult:
    """Kept images split train/val/test by a hash of their pixels, resized and converted to the configured size and
    channels, K albumentations copies of each train image; uint8 .npy shards + labels."""
    batch_id = context.partition_key
    tensor_config = core_config(config.tensor_config, "training_tensors")
    layout = storage.layout()
    progress = log_progress(context.log.info, f"tensors of {batch_id}")
    with writing(layout, "training_tensors", batch_id, prefix=""):
        summary = build_tensors(layout, batch_id, tensor_config, config.workers, progress)
    if sum(summary.counts.values()) == 0:
        context.log.warning(f"batch {batch_id}: the clean set is empty; its shards are empty")
    return MaterializeResult(
        metadata=_metadata(summary, layout, tensor_config),
        data_version=DataVersion(summary.data_version),
    )


def _metadata(summary: TensorSummary, layout: DataLayout, config: TensorConfig) -> dict:
    counts = summary.counts
    metadata = {
        "path": MetadataValue.path(str(summary.path)),
        "generation": summary.generation,
        "num_images": counts["train"] + counts["val"] + counts["test"],
        "num_train": counts["train"],
        "num_val": counts["val"],
        "num_test": counts["test"],
        "num_train_augmented": counts["train_aug"],
        "shape": f"{config.channels}x{config.size}x{config.size} uint8 (NCHW shards)",
        "shards": summary.shards,
        "classes": MetadataValue.json(summary.classes),
        "counts_by_split_and_class": MetadataValue.json(summary.per_class),
        "conversions": MetadataValue.json(summary.conversions),
        "config": MetadataValue.json(config.to_dict()),
    }
    tensor_set = current_tensors(layout, summary.batch_id)
    examples = augmentation_examples(tensor_set, EXAMPLES) if tensor_set is not None and config.copies else {}
    if examples:
        metadata["augmentation_examples"] = MetadataValue.md(
            "before (first column) and its augmented copies\n\n" + gallery_markdown(examples, title="image")
        )
    return metadata
