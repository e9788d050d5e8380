"""Jobs: named selections of assets that sensors, schedules and the CLI launch."""

from dagster import AssetSelection, define_asset_job

ingest_job = define_asset_job(
    "ingest_batch",
    selection=AssetSelection.assets("raw_images"),
    description="Ingest one landed batch (raw_images for one partition).",
)
