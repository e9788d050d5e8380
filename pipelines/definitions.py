"""The code location loaded by `workspace.yaml`: every asset, job, sensor and resource of synthaug."""

from dagster import Definitions, in_process_executor

from assets.augmentation_report import augmentation_report
from assets.clean_images import clean_images
from assets.feature_extractor import feature_extractor
from assets.gan_checkpoint import gan_checkpoint
from assets.normalization_stats import normalization_stats
from assets.raw_images import raw_images
from assets.synthetic_images import synthetic_images
from assets.training_tensors import training_tensors
from pipelines.automation import automation_sensor, with_automation
from pipelines.jobs import batch_job, ingest_job, training_job
from pipelines.schedules import training_schedule
from pipelines.sensors import landing_sensor, training_growth_sensor
from resources.compute import ComputeResource
from resources.storage import LandingResource, StorageResource
from synthaug.core import settings

defs = Definitions(
    assets=with_automation(
        [
            raw_images,
            clean_images,
            training_tensors,
            normalization_stats,
            feature_extractor,
            gan_checkpoint,
            synthetic_images,
            augmentation_report,
        ]
    ),
    jobs=[ingest_job, batch_job, training_job],
    schedules=[training_schedule],
    sensors=[landing_sensor, training_growth_sensor, automation_sensor],
    # Each run's steps execute in the run's own process: a step subprocess per step would import torch and the code
    # location a second time (seconds per run), and the stages already spread their work over the cores themselves.
    executor=in_process_executor,
    resources={
        "storage": StorageResource(data_root=str(settings.data_root())),
        "compute": ComputeResource(device=settings.device()),
        "landing": LandingResource(
            landing_dir=str(settings.landing_dir()),
            quiet_period_seconds=settings.quiet_period_seconds(),
        ),
    },
)
