"""The landing sensor: notices complete new batches, registers them as partitions and requests their ingest."""

import json
import os
import time

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from assets.partitions import BATCHES, batch_partitions
from pipelines.jobs import ingest_job
from resources.storage import LandingResource
from synthaug.landing import PendingBatch, batch_readiness, invalid_batch_id_reason, list_batch_folders

SENSOR_INTERVAL_S = int(os.environ.get("SYNTHAUG_SENSOR_INTERVAL_SECONDS", "15"))


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
