"""Sensors: the landing sensor registers complete new batches as partitions and requests their ingest; the growth
sensor requests training when the train data has grown enough since the last checkpoint."""

import json
import time

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from assets.partitions import BATCHES, batch_partitions
from pipelines.jobs import ingest_job, training_job
from resources.storage import LandingResource
from synthaug.core import settings
from synthaug.ingest.landing import PendingBatch, batch_readiness, invalid_batch_id_reason, list_batch_folders
from synthaug.models.growth import parse_growth_share, training_due

SENSOR_INTERVAL_S = settings.sensor_interval_seconds()
GROWTH_INTERVAL_S = settings.growth_sensor_interval_seconds()


def ingest_run_key(batch_id: str) -> str:
    """One run key per batch, so Dagster never launches a second ingest of the same batch."""
    return f"raw_images:{batch_id}"


@sensor(
    job=ingest_job,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description="Registers each complete new batch in the landing folder (a _READY file, or unchanged for the "
    "quiet period) as a partition and requests its ingest once.",
)
def landing_sensor(context: SensorEvaluationContext, landing: LandingResource) -> SensorResult | SkipReason:
    pending = {k: PendingBatch(*v) for k, v in json.loads(context.cursor or "{}").items()}
    still_pending: dict[str, PendingBatch] = {}
    ready: list[str] = []
    waiting: list[str] = []
    now = time.time()
    for batch_id in list_batch_folders(landing.path):
        if context.instance.has_dynamic_partition(BATCHES, batch_id):
            continue
        if reason := invalid_batch_id_reason(batch_id):
            context.log.warning(reason)
            continue
        is_ready, why, state = batch_readiness(
            landing.path / batch_id, pending.get(batch_id), now, landing.quiet_period_seconds
        )
        context.log.info(why)
        if is_ready:
            ready.append(batch_id)
        else:
            waiting.append(why)
            if state is not None:
                still_pending[batch_id] = state
    context.update_cursor(json.dumps({k: [v.fingerprint, v.unchanged_since] for k, v in still_pending.items()}))
    if not ready:
        return SkipReason("; ".join(waiting) if waiting else f"no new batches in {landing.path}")
    return SensorResult(
        run_requests=[RunRequest(partition_key=b, run_key=ingest_run_key(b)) for b in ready],
        dynamic_partitions_requests=[batch_partitions.build_add_request(ready)],
    )


TRAINING_STATUSES = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def growth_share() -> float:
    """`SYNTHAUG_TRAINING_GROWTH_SHARE`: retrain once the train images grew by this share (default 0.2 = 20 %)."""
    return parse_growth_share(settings.training_growth_share_text())


def _latest_count(instance: DagsterInstance, asset: str) -> tuple[int | None, int | None]:
    """(storage id, `num_train_images`) of the asset's latest materialization; (None, None) when it has none."""
    records = instance.fetch_materializations(AssetRecordsFilter(asset_key=AssetKey(asset)), limit=1).records
    if not records:
        return None, None
    value = records[0].asset_materialization.metadata.get("num_train_images")
    return records[0].storage_id, None if value is None else int(value.value)


@sensor(
    job=training_job,
    minimum_interval_seconds=GROWTH_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description="Retrains feature_extractor and gan_checkpoint once the clean train images (num_train_images of "
    "the latest normalization_stats, which is what training reads) exceed the count the latest gan_checkpoint was "
    f"trained on by SYNTHAUG_TRAINING_GROWTH_SHARE (now {growth_share():g}); one request per checkpoint.",
)
def training_growth_sensor(context: SensorEvaluationContext) -> RunRequest | SkipReason:
    instance = context.instance
    _, current = _latest_count(instance, "normalization_stats")
    if current is None:
        return SkipReason("no normalization_stats with num_train_images yet: no train data to count")
    checkpoint_id, at_checkpoint = _latest_count(instance, "gan_checkpoint")
    if checkpoint_id is not None and at_checkpoint is None:
        return SkipReason("the latest gan_checkpoint records no num_train_images; the next training records it")
    decision = training_due(current, at_checkpoint, growth_share())
    if not decision.due:
        return SkipReason(decision.reason)
    busy = instance.get_runs(RunsFilter(job_name=training_job.name, statuses=TRAINING_STATUSES), limit=1)
    if busy:
        return SkipReason(f"{decision.reason}; training run {busy[0].run_id} is already queued or running")
    return RunRequest(
        run_key=f"training-growth:{checkpoint_id if checkpoint_id is not None else 'first'}",
        tags={"synthaug/trigger": "growth"},
    )
