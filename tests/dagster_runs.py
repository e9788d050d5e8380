"""How the asset tests run Dagster: one batch materialized on a given landing and data root, and the failure of
one step read back."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dagster import AssetsDefinition, DagsterInstance, ExecuteInProcessResult, materialize
from dagster._core.execution.plan.objects import StepFailureData

from assets.partitions import BATCHES
from resources.storage import LandingResource, StorageResource


def batch_resources(landing: Path, data_root: Path) -> dict:
    """The storage and landing resources every batch asset needs."""
    return {"storage": StorageResource(data_root=str(data_root)), "landing": LandingResource(landing_dir=str(landing))}


def materialize_batch(
    assets: Sequence[AssetsDefinition],
    instance: DagsterInstance,
    landing: Path,
    data_root: Path,
    batch: str,
    ops: dict[str, dict] | None = None,
    selection: list[str] | None = None,
) -> ExecuteInProcessResult:
    """Register `batch` (if new) and materialize `assets` for it; `ops` maps an asset to its config."""
    if not instance.has_dynamic_partition(BATCHES, batch):
        instance.add_dynamic_partitions(BATCHES, [batch])
    return materialize(
        list(assets),
        selection=selection,
        instance=instance,
        partition_key=batch,
        resources=batch_resources(landing, data_root),
        run_config={"ops": {name: {"config": config} for name, config in (ops or {}).items()}} if ops else None,
        raise_on_error=False,
    )


def step_failure(result: ExecuteInProcessResult, step_key: str) -> StepFailureData:
    """The failure data of the step `step_key` (the test fails if that step did not fail)."""
    failures = [e for e in result.get_step_failure_events() if e.step_key == step_key]
    assert failures, f"step {step_key} did not fail"
    return failures[0].step_failure_data


def step_error(result: ExecuteInProcessResult, step_key: str) -> str:
    """The error text of the failed step `step_key` of a failed run: where a config that pydantic refuses ends up."""
    assert not result.success
    return str(step_failure(result, step_key).error)
