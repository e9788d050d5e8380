"""The training schedule: retrain the feature extractor and the GAN on a cron (SYNTHAUG_TRAINING_CRON)."""

from dagster import (
    AssetKey,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from pipelines.jobs import training_job
from synthaug.core import settings

TRAINING_CRON = settings.training_cron()
TRAINING_TIMEZONE = settings.training_timezone()


@schedule(
    job=training_job,
    cron_schedule=TRAINING_CRON,
    execution_timezone=TRAINING_TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
    description=f"Retrains feature_extractor and gan_checkpoint at '{TRAINING_CRON}' ({TRAINING_TIMEZONE}; set "
    "SYNTHAUG_TRAINING_CRON / SYNTHAUG_TRAINING_TIMEZONE), once normalization_stats exist. The GAN resumes from its "
    "newest checkpoint of the same data and config.",
)
def training_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    if context.instance.get_latest_materialization_event(AssetKey("normalization_stats")) is None:
        return SkipReason("no normalization_stats yet: nothing to train on until a batch has training tensors")
    tick = context.scheduled_execution_time
    stamp = tick.isoformat(timespec="minutes") if tick is not None else "now"
    return RunRequest(run_key=f"training-schedule:{stamp}", tags={"synthaug/trigger": "schedule"})
