"""The cheap per-batch stages (raw → clean → tensors → stats) materialized in one real run, as a run launched by a
sensor or the automation would: the helper the automation and recipe tests drive their instances with."""

from __future__ import annotations

from pathlib import Path

from dagster import DagsterInstance, materialize

from assets.clean_images import clean_images
from assets.normalization_stats import normalization_stats
from assets.raw_images import raw_images
from assets.training_tensors import training_tensors
from resources.storage import LandingResource, StorageResource

CHEAP = [raw_images, clean_images, training_tensors, normalization_stats]


def cheap_ops(copies: int = 0) -> dict[str, dict]:
    """Op config of the cheap stages: one worker each, no blur rule, `copies` augmented copies per train image."""
    return {
        "raw_images": {"config": {"workers": 1}},
        "clean_images": {"config": {"blur_mode": "off", "workers": 1}},
        "training_tensors": {"config": {"workers": 1, "copies": copies}},
    }


def materialize_cheap(
    instance: DagsterInstance,
    landing: Path,
    data_root: Path,
    names: list[str],
    partition: str | None,
    *,
    copies: int = 0,
) -> None:
    """Materialize the cheap stages `names` of `partition` in one run; the test fails unless the run succeeds."""
    result = materialize(
        CHEAP,
        selection=names,
        instance=instance,
        partition_key=partition,
        resources={
            "storage": StorageResource(data_root=str(data_root)),
            "landing": LandingResource(landing_dir=str(landing), quiet_period_seconds=0),
        },
        run_config={"ops": {k: v for k, v in cheap_ops(copies).items() if k in names}},
    )
    assert result.success, f"materializing {names} of {partition} failed"
