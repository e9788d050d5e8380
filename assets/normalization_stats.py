"""`normalization_stats`: per-channel mean/std and min-max range of the train split of every batch, and the
class-name -> index mapping that every training stage uses."""

import hashlib

from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from assets.partitions import BATCHES
from assets.support import stage_lock, writing
from resources.storage import StorageResource
from synthaug.tensors.norm_stats import compute_normalization_stats, write_normalization_stats


@asset(
    deps=["training_tensors"],
    group_name="tensors",
    kinds={"python", "json"},
    code_version="1",
)
def normalization_stats(context: AssetExecutionContext, storage: StorageResource) -> MaterializeResult:
    """Per-channel mean/std (classifier inputs) and min-max range (GAN inputs in [-1, 1]) of the train split over every
    batch's training tensors, and the sorted class list that fixes label indices."""
    layout = storage.layout()
    batches = context.instance.get_dynamic_partitions(BATCHES)
    with writing(layout, "normalization_stats"):
        stats = compute_normalization_stats(
            layout, batches, lambda batch_id: stage_lock(layout, "training_tensors", batch_id)
        )
        path = write_normalization_stats(layout, stats)
    if stats.missing_batches:
        context.log.warning(f"batches without training tensors are left out: {list(stats.missing_batches)}")
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(path)),
            "num_train_images": stats.num_train,
            "num_unlabeled": stats.num_unlabeled,
            "num_classes": len(stats.classes),
            "shape": f"{stats.channels}x{stats.size}x{stats.size}",
            "mean": MetadataValue.json([round(v, 6) for v in stats.mean]),
            "std": MetadataValue.json([round(v, 6) for v in stats.std]),
            "min": MetadataValue.json(list(stats.min)),
            "max": MetadataValue.json(list(stats.max)),
            "class_to_index": MetadataValue.json(stats.class_to_index),
            "batches": MetadataValue.json(stats.batches),
            "missing_batches": MetadataValue.json(list(stats.missing_batches)),
        },
        data_version=DataVersion(hashlib.sha256(stats.to_json()).hexdigest()[:16]),
    )
