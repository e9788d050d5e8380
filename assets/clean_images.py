"""`clean_images`: for every raw image of a batch, kept or removed and why, deduplicated against earlier batches."""

import time

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Config,
    DagsterInstance,
    DagsterRunStatus,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    RunsFilter,
)
from pydantic import Field

from assets.partitions import BATCHES
from assets.raw_images import INGEST_JOB
from assets.support import batch_asset, core_config, log_progress, writing
from resources.storage import StorageResource
from synthaug.clean.batch import CleanSummary, clean_batch, missing_earlier_raw
from synthaug.clean.decision import REASONS, CleanRules
from synthaug.core.layout import DataLayout
from synthaug.core.thumbnails import gallery_markdown
from synthaug.ingest.samples import examples_by_group, manifest_digest

_DEFAULTS = CleanRules()
EXAMPLES_PER_REASON = 8
ACTIVE = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
RAW_IMAGES = AssetKey("raw_images")


class CleanImagesConfig(Config):
    """Thresholds of the cleaning rules (defaults measured by benchmarks/cleaning_benchmark.py)."""

    min_side: int = Field(_DEFAULTS.min_side, description="Images whose shorter side is smaller are too_small.")
    min_std: float = Field(_DEFAULTS.min_std, description="Grey standard deviation below this is low_information.")
    min_entropy: float = Field(
        _DEFAULTS.min_entropy, description="Histogram entropy (bits) below this is low_information."
    )
    min_detail: float = Field(
        _DEFAULTS.min_detail,
        description="Structure (grey levels) beyond a smooth ramp or vignette below this is low_information.",
    )
    blur_mode: str = Field(_DEFAULTS.blur_mode, description="'absolute', 'percentile' (of the batch) or 'off'.")
    blur_threshold: float = Field(
        _DEFAULTS.blur_threshold, description="absolute mode: native-resolution sharpness (0-1) below this is blurry."
    )
    blur_percentile: float = Field(
        _DEFAULTS.blur_percentile, description="percentile mode: the blurriest p% are blurry."
    )
    hash_algorithm: str = Field(_DEFAULTS.hash_algorithm, description="imagehash algorithm for near duplicates.")
    hash_threshold: int = Field(_DEFAULTS.hash_threshold, description="Hamming distance at most this links two images.")
    verify_min_correlation: float = Field(
        _DEFAULTS.verify_min_correlation, description="Linked images must also correlate this much (16x16 thumbnails)."
    )
    crop_hash_threshold: int = Field(
        _DEFAULTS.crop_hash_threshold,
        description="Crop links: a smaller image within this many bits of a larger one is a crop candidate; 0: off.",
    )
    crop_max_share: float = Field(
        _DEFAULTS.crop_max_share, description="Crop links: at most this share of each side may be cut off."
    )
    crop_min_correlation: float = Field(
        _DEFAULTS.crop_min_correlation,
        description="Crop links: a window of the larger image's thumbnail must correlate this much.",
    )
    layout_neighbours: int = Field(
        _DEFAULTS.layout_neighbours,
        description="Near duplicates: nearest neighbours in the layout descriptor proposed as candidates; 0: off.",
    )
    layout_min_cosine: float = Field(
        _DEFAULTS.layout_min_cosine, description="Near duplicates: least layout-descriptor cosine of a candidate."
    )
    align_min_correlation: float = Field(
        _DEFAULTS.align_min_correlation,
        description="Near duplicates: 32x32 correlation after a similarity alignment that confirms a candidate.",
    )
    align_small_min_correlation: float = Field(
        _DEFAULTS.align_small_min_correlation,
        description="The same when either image's shorter side is under 64 px (small images correlate by chance).",
    )
    colour_max_distance: float = Field(
        _DEFAULTS.colour_max_distance,
        description="Near duplicates: largest hue-histogram colour distance of a link; 0: colour ignored.",
    )
    ratio_neighbours: int = Field(
        _DEFAULTS.ratio_neighbours,
        description="Images under 64 px: layout candidates per image for the ratio test, which links a pair when "
        "one image's best match is clearly ahead of its second best; 0: off.",
    )
    ratio_min_correlation: float = Field(
        _DEFAULTS.ratio_min_correlation,
        description="Ratio test: least 32x32 correlation after alignment of a pair it links.",
    )
    ratio_max: float = Field(
        _DEFAULTS.ratio_max,
        description="Ratio test: largest (1 - best correlation) / (1 - second-best cluster's correlation).",
    )
    work_size: int = Field(_DEFAULTS.work_size, description="Side of the working resolution of the thumbnails.")
    max_removed_share: float = Field(
        0.5, ge=0, le=1, description="The blocking check fails when a larger share is removed."
    )
    workers: int = Field(
        0, description="Feature processes, and threads of the duplicate checks; 0 uses every CPU core."
    )
    wait_for_earlier_seconds: float = Field(
        3600.0,
        description="How long to wait for an earlier batch whose raw_images run is still queued or running "
        "(duplicates are decided against every earlier batch); a missing one with no such run fails at once.",
    )

    def rules(self) -> CleanRules:
        """The core's rules; raises ValueError naming every invalid field."""
        return CleanRules(**{name: getattr(self, name) for name in CleanRules.field_names()})


@batch_asset(
    "clean",
    {"python", "parquet"},
    deps=["raw_images"],
    check_specs=[
        AssetCheckSpec("removed_share_within_limit", asset="clean_images", blocking=True),
        AssetCheckSpec("duplicate_clusters_not_chained", asset="clean_images"),
    ],
)
def clean_images(
    context: AssetExecutionContext, config: CleanImagesConfig, storage: StorageResource
) -> MaterializeResult:
    """Every raw image kept or removed (corrupt, too_small, low_information, blurry, exact_duplicate, near_duplicate)
    with the scores behind the decision; duplicates are checked against all earlier batches."""
    batch_id = context.partition_key
    rules = core_config(config.rules, "clean_images")
    layout = storage.layout()
    arrival = context.instance.get_dynamic_partitions(BATCHES)
    _wait_for_earlier_ingests(context, layout, arrival, batch_id, config.wait_for_earlier_seconds)
    context.log.info(f"cleaning {batch_id} against {arrival.index(batch_id)} earlier batch(es)")
    with writing(layout, "clean_images", batch_id, prefix=""):
        summary = clean_batch(
            layout, arrival, batch_id, rules, config.workers, _feature_logger(context), context.log.info
        )
    removed = summary.total - summary.kept
    share = removed / summary.total if summary.total else 1.0
    if summary.kept == 0:
        context.log.warning(f"batch {batch_id}: every image was removed; downstream stages get an empty set")
    return MaterializeResult(
        metadata=_metadata(summary, layout, rules),
        data_version=DataVersion(manifest_digest(summary.manifest_path, ["image_id", "status", "reason"])),
        check_results=[
            AssetCheckResult(
                check_name="removed_share_within_limit",
                passed=share <= config.max_removed_share,
                severity=AssetCheckSeverity.ERROR,
                metadata={"removed_share": round(share, 4), "limit": config.max_removed_share},
                description=f"{removed} of {summary.total} images removed",
            ),
            AssetCheckResult(
                check_name="duplicate_clusters_not_chained",
                passed=summary.chained_images == 0,
                severity=AssetCheckSeverity.WARN,
                metadata={
                    "max_cluster_diameter": summary.max_cluster_diameter,
                    "images_in_chained_clusters": summary.chained_images,
                    "limit": 2 * rules.hash_threshold,
                    "crop_limit": 2 * max(rules.hash_threshold, rules.crop_hash_threshold),
                },
                description="a cluster is chained when its diameter exceeds twice its link threshold "
                "(the crop threshold for clusters joined by a crop link)",
            ),
        ],
    )


def _wait_for_earlier_ingests(
    context: AssetExecutionContext, layout: DataLayout, arrival: list[str], batch_id: str, timeout_s: float
) -> None:
    """Batches land and are ingested concurrently, so an earlier batch may still be in its raw_images run when this
    one is ready: wait for it (logging every 10 s) instead of failing a run that automation would not retry.
    Returns at once when nothing is missing, or when a missing batch has no ingest queued or running (clean_batch
    then fails with what to do)."""
    start = time.monotonic()
    last_log = start - 10
    while missing := missing_earlier_raw(layout, arrival, batch_id):
        busy = [b for b in missing if _ingest_active(context.instance, b)]
        if len(busy) < len(missing):
            return
        waited = time.monotonic() - start
        if waited >= timeout_s:
            raise Failure(
                description=f"clean_images for batch {batch_id} waited {waited:.0f}s for the raw_images runs of "
                f"earlier batch(es) {busy}, which are still queued or running; let them finish (or cancel them), "
                "then rerun clean_images for this batch, or raise wait_for_earlier_seconds"
            )
        if time.monotonic() - last_log >= 10:
            context.log.info(
                f"waiting for the ingest of earlier batch(es) {busy} (duplicates are decided against every earlier "
                f"batch): {waited:.0f}s so far, at most {timeout_s:.0f}s"
            )
            last_log = time.monotonic()
        time.sleep(1.0)


def _ingest_active(instance: DagsterInstance, batch_id: str) -> bool:
    """True when a queued or running run materializes raw_images for `batch_id`."""
    runs = instance.get_runs(RunsFilter(statuses=ACTIVE, tags={"dagster/partition": batch_id}))
    return any(run.job_name == INGEST_JOB or RAW_IMAGES in (run.asset_selection or ()) for run in runs)


def _feature_logger(context: AssetExecutionContext):
    """Progress callbacks that log the feature computation of each batch with its rate and time left."""

    def for_batch(batch_id: str):
        return log_progress(context.log.info, f"features of {batch_id}")

    return for_batch


def _metadata(summary: CleanSummary, layout: DataLayout, rules: CleanRules) -> dict:
    metadata = {
        "path": MetadataValue.path(str(summary.manifest_path.parent)),
        "manifest": MetadataValue.path(str(summary.manifest_path)),
        "num_images": summary.total,
        "num_kept": summary.kept,
        "num_removed": summary.total - summary.kept,
        "removed_by_reason": MetadataValue.json({r: summary.reasons.get(r, 0) for r in REASONS}),
        "max_cluster_diameter": summary.max_cluster_diameter,
        "rules": MetadataValue.json(rules.__dict__),
    }
    if summary.blur_cutoff is not None:
        metadata["blur_cutoff"] = round(summary.blur_cutoff, 2)
    examples = _removed_examples(summary, layout)
    if examples:
        metadata["removed_examples"] = MetadataValue.md(gallery_markdown(examples, title="reason"))
    return metadata


def _removed_examples(summary: CleanSummary, layout: DataLayout) -> dict:
    groups = examples_by_group(layout, summary.manifest_path, "reason", EXAMPLES_PER_REASON, where_status="removed")
    return {r: groups[r] for r in REASONS if groups.get(r)}
