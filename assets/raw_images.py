"""`raw_images`: ingest one landed batch into an immutable, content-addressed copy plus a manifest."""

import pyarrow.compute as pc
import pyarrow.parquet as pq
from dagster import (
    AssetExecutionContext,
    Config,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
)
from pydantic import Field

from assets.support import batch_asset, log_progress, writing
from resources.storage import LandingResource, StorageResource
from synthaug.core.layout import DataLayout
from synthaug.core.thumbnails import gallery_markdown
from synthaug.ingest.batch import (
    DEFAULT_DECODE_MEMORY_MB,
    DEFAULT_DECODE_TIMEOUT_S,
    DEFAULT_MAX_FILE_BYTES,
    IngestOptions,
    IngestSummary,
    ingest_batch,
)
from synthaug.ingest.imageio import DEFAULT_MAX_PIXELS
from synthaug.ingest.samples import examples_by_group, manifest_digest

MAX_ERROR_ROWS_SHOWN = 25
INGEST_JOB = "ingest_batch"  # the job the landing sensor launches (pipelines/jobs.py) for one batch's raw_images


class RawImagesConfig(Config):
    """Limits for ingest; defaults suit photos and scans alike."""

    max_pixels: int = Field(
        DEFAULT_MAX_PIXELS, gt=0, description="Images with more pixels are refused (decompression bombs)."
    )
    max_file_bytes: int = Field(DEFAULT_MAX_FILE_BYTES, gt=0, description="Files larger than this are refused unread.")
    workers: int = Field(0, ge=0, description="Decode processes; 0 uses every CPU core.")
    decode_timeout_s: float = Field(
        DEFAULT_DECODE_TIMEOUT_S,
        gt=0,
        description="Seconds one file may take to decode; a file that takes longer is recorded as decode_timeout "
        "and its worker replaced.",
    )
    decode_memory_mb: int = Field(
        DEFAULT_DECODE_MEMORY_MB,
        ge=0,
        description="Memory (MiB) a decode worker may use beyond its start; a file that needs more is recorded as "
        "decode_memory and its worker replaced. 0 turns the ceiling off.",
    )
    strict_jpeg: bool = Field(
        False,
        description="Treat every libjpeg warning as corrupt data. Off: warnings that lose no pixels (stray bytes "
        "between header segments, a bad ICC marker, end-marker padding) keep the image with a note.",
    )


@batch_asset(
    "ingest",
    {"python", "parquet"},
)
def raw_images(
    context: AssetExecutionContext, config: RawImagesConfig, storage: StorageResource, landing: LandingResource
) -> MaterializeResult:
    """Every file of a landed batch, fully decoded and validated: an immutable content-addressed copy of each good
    image and a manifest row per file (bad files included, with the reason)."""
    batch_id = context.partition_key
    batch_dir = landing.path / batch_id
    if not batch_dir.is_dir():
        raise Failure(
            description=f"batch folder {batch_dir} does not exist: it was moved or deleted after it was registered. "
            "Put it back, or delete the partition in the UI."
        )
    layout = storage.layout()

    progress = log_progress(context.log.info, f"ingest {batch_id} (files)")
    options = IngestOptions(
        max_pixels=config.max_pixels,
        max_file_bytes=config.max_file_bytes,
        workers=config.workers,
        decode_timeout_s=config.decode_timeout_s,
        decode_memory_mb=config.decode_memory_mb,
        strict_jpeg=config.strict_jpeg,
    )
    with writing(layout, "raw_images", batch_id, prefix=""):
        context.log.info(f"ingesting {batch_dir}")
        summary = ingest_batch(batch_dir, layout, landing.path, options, progress)
    for warning in summary.warnings:
        context.log.warning(f"{batch_id}: {warning}")
    if summary.workers.failures:
        context.log.warning(
            f"{batch_id}: decode workers replaced {summary.workers.replaced} time(s) "
            f"({', '.join(f'{n} {kind}' for kind, n in sorted(summary.workers.failures.items()))}); "
            "each such file has its own error row"
        )
    if summary.total == 0:
        context.log.warning(f"batch {batch_id} holds no files: the manifest is empty")
    return MaterializeResult(
        metadata=_metadata(summary, layout),
        data_version=DataVersion(manifest_digest(summary.manifest_path, ["image_id", "label", "pixel_hash", "status"])),
    )


def _metadata(summary: IngestSummary, layout: DataLayout) -> dict:
    errors_md = _error_table(summary)
    metadata = {
        "path": MetadataValue.path(str(summary.manifest_path.parent)),
        "manifest": MetadataValue.path(str(summary.manifest_path)),
        "num_files": summary.total,
        "num_ok": summary.ok,
        "num_errors": sum(summary.errors.values()),
        "num_noted": summary.noted,
        "stored_mib": round(summary.stored_bytes / 2**20, 2),
        "errors_by_reason": MetadataValue.json(dict(summary.errors)),
        "images_per_label": MetadataValue.json(dict(sorted(summary.labels.items()))),
        "formats": MetadataValue.json(dict(summary.formats)),
        "seconds": round(summary.seconds, 2),
        "files_per_second": round(summary.total / summary.seconds, 1) if summary.seconds else 0.0,
        "workers_replaced": summary.workers.replaced,
        "worker_peak_rss_mib": round(summary.workers.worker_peak_rss / 2**20, 1),
    }
    if summary.warnings:
        metadata["warnings"] = MetadataValue.md("\n".join(f"- {w}" for w in summary.warnings[:50]))
    if errors_md:
        metadata["bad_files"] = MetadataValue.md(errors_md)
    if summary.ok:
        samples = examples_by_group(layout, summary.manifest_path, "label", per_group=8)
        metadata["examples_per_label"] = MetadataValue.md(gallery_markdown(samples, title="label"))
    return metadata


def _error_table(summary: IngestSummary) -> str:
    table = pq.read_table(summary.manifest_path, columns=["source_path", "status", "error_code", "error"])
    bad = table.filter(pc.equal(table["status"], "error")).slice(0, MAX_ERROR_ROWS_SHOWN).to_pylist()
    if not bad:
        return ""
    lines = ["| file | reason | detail |", "|---|---|---|"]
    for row in bad:
        cells = [str(row[k]).replace("|", "\\|").replace("\n", " ") for k in ("source_path", "error_code", "error")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
