"""The cheap per-batch stages (raw → clean → tensors → stats) materialized in one real run, as a run launched by a
sensor or the automation would: the helper the automation and recipe tests drive their instances with."""

from __future__ import annotations

from pathlib import Path

from dagster import DagsterInstance, ExecuteInProcessResult, materialize

from assets.clean_images import clean_images
from assets.normalization_stats import normalization_stats
from assets.raw_images import raw_images
from assets.training_tensors import training_tensors
from resources.storage import LandingResource, StorageResource

CHEAP = [raw_images, clean_images, training_tensors, normalization_stats]


def cheap_ops(copies: int = 0, **tensor_config: int) -> dict[str, dict]:
    """Op config of the cheap stages: one worker each, no blur rule, `copies` augmented copies per train image
    (plus any other training_tensors settings, e.g. shard_size)."""
    return {
        "raw_images": {"config": {"workers": 1}},
        "clean_images": {"config": {"blur_mode": "off", "workers": 1}},
        "training_tensors": {"config": {"workers": 1, "copies": copies, **tensor_config}},
    }


def run_cheap(
    instance: DagsterInstance,
    landing: Path,
    data_root: Path,
    names: list[str],
    partition: str | None,
    ops: dict[str, dict] | None = None,
) -> ExecuteInProcessResult:
    """Materialize the cheap stages `names` of `partition` in one run (op config `ops`, default `cheap_ops()`) and
    return its result, failed or not."""
    ops = cheap_ops() if ops is None else ops
    return materialize(
        CHEAP,
        selection=names,
        instance=instance,
        partition_key=partition,
        resources={
            "storage": StorageResource(data_root=str(data_root)),
            "landing": LandingResource(landing_dir=str(landing), quiet_period_seconds=0),
        },
        run_config={"ops": {k: v for k, v in ops.items() if k in names}},
        raise_on_error=False,
    )


def materialize_cheap(
    instance: DagsterInstance,
    landing: Path,
    data_root: Path,
    names: list[str],
    partition: str | None,
    *,
    copies: int = 0,
) -> None:
    """`run_cheap` with `cheap_ops(copies)`; the test fails unless the run succeeds."""
    result = run_cheap(instance, landing, data_root, names, partition, cheap_ops(copies))
    assert result.success, f"materializing {names} of {partition} failed"
