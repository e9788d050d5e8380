"""Jobs: named selections of assets that sensors, schedules and the CLI launch."""

from dagster import AssetSelection, define_asset_job

from assets.raw_images import INGEST_JOB

ingest_job = define_asset_job(
    INGEST_JOB,
    selection=AssetSelection.assets("raw_images"),
    description="Ingest one landed batch (raw_images for one partition).",
)

batch_job = define_asset_job(
    "batch_stages",
    selection=AssetSelection.assets("clean_images", "training_tensors"),
    description="Clean and tensorize one ingested batch (clean_images, then training_tensors); backfill it over "
    "every batch with `dagster job backfill -j batch_stages --all` or from this job's Partitions tab.",
)

training_job = define_asset_job(
    "train_models",
    selection=AssetSelection.assets("feature_extractor", "gan_checkpoint"),
    description="Retrain the feature extractor and train (or resume) the GAN on every batch's train split; "
    "queued runs of it take the `gpu` pool one at a time.",
)
