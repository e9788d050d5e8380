"""Concurrency (issue 8, part 3, first half): two runs of the same partition started at the same moment in two
processes, against one real on-disk instance and one data root, both succeed (the second waits for the first's
lock) and leave outputs byte-identical to those of a single uninterrupted run, readable, with no temporaries."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import DagsterEventType, DagsterInstance, materialize

from assets.clean_images import clean_images
from assets.partitions import BATCHES
from assets.raw_images import raw_images
from assets.training_tensors import training_tensors
from resources.storage import LandingResource, StorageResource
from synthaug.core.layout import DataLayout
from synthaug.tensors.readback import current_tensors
from tests.reliability.outputs import REPO, TINY, assert_nothing_stray, dagster_home, data_tree

STAGES = {"raw_images": raw_images, "clean_images": clean_images, "training_tensors": training_tensors}

_RUN_AT_BARRIER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from dagster import DagsterInstance, materialize
    from assets.{asset} import {asset}
    from resources.storage import LandingResource, StorageResource
    home, data_root, landing, barrier, name = sys.argv[1:6]
    resources = dict(storage=StorageResource(data_root=data_root), landing=LandingResource(landing_dir=landing))
    with DagsterInstance.from_config(home) as instance:
        Path(barrier, name).touch()
        while len(list(Path(barrier).iterdir())) < 2:
            time.sleep(0.005)
        result = materialize([{asset}], instance=instance, partition_key="b1", resources=resources,
                             run_config={config}, raise_on_error=False)
    print(json.dumps({{"run_id": result.run_id, "success": result.success}}))
    """
)


def _start(asset: str, home: Path, data_root: Path, landing: Path, barrier: Path, name: str) -> subprocess.Popen:
    """Start one run in its own interpreter; it waits at `barrier` until the other has started too. Output goes to
    `<barrier>/../<name>.log` (a pipe could fill and block a run while it holds the lock the other waits for)."""
    config = {"ops": {asset: TINY["ops"][asset]}}
    code = _RUN_AT_BARRIER.format(asset=asset, config=repr(config))
    with open(barrier.parent / f"{name}.log", "w") as log:
        return subprocess.Popen(
            [sys.executable, "-c", code, str(home), str(data_root), str(landing), str(barrier), name],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip


def _step_window(instance: DagsterInstance, run_id: str) -> tuple[float, float, str]:
    """When the run's step started and ended, and the data version it materialized, from the instance's event log."""
    events = {e.dagster_event.event_type: e for e in instance.all_logs(run_id) if e.dagster_event}
    materialized = events[DagsterEventType.ASSET_MATERIALIZATION].asset_materialization
    return (
        events[DagsterEventType.STEP_START].timestamp,
        events[DagsterEventType.STEP_SUCCESS].timestamp,
        materialized.tags["dagster/data_version"],
    )


@pytest.mark.parametrize("asset", list(STAGES))
def test_two_runs_of_one_partition_at_once_end_as_one_uninterrupted_run(
    asset: str, tmp_path: Path, make_batch: Callable[..., Path], landing: Path, data_root: Path
):
    make_batch("b1", per_class=12, classes=10)
    home = dagster_home(tmp_path / "dagster_home")
    resources = {
        "storage": StorageResource(data_root=str(data_root)),
        "landing": LandingResource(landing_dir=str(landing)),
    }
    upstream = list(STAGES)[: list(STAGES).index(asset)]
    with DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(BATCHES, ["b1"])
        for name in upstream:
            config = {"ops": {name: TINY["ops"][name]}}
            assert materialize(
                [STAGES[name]], instance=instance, partition_key="b1", resources=resources, run_config=config
            ).success

    single_root = tmp_path / "single"
    shutil.copytree(data_root, single_root)
    with DagsterInstance.from_config(str(home)) as instance:
        single = materialize(
            [STAGES[asset]], instance=instance, partition_key="b1", run_config={"ops": {asset: TINY["ops"][asset]}},
            resources=resources | {"storage": StorageResource(data_root=str(single_root))},
        )  # fmt: skip
    assert single.success

    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [_start(asset, home, data_root, landing, barrier, name) for name in ("first", "second")]
    outcomes = []
    for proc, name in zip(procs, ("first", "second"), strict=True):
        proc.wait(timeout=120)
        output = (tmp_path / f"{name}.log").read_text()
        assert proc.returncode == 0, output[-3000:]
        outcomes.append(json.loads(next(line for line in output.splitlines() if line.startswith('{"run_id"'))))
    assert all(o["success"] for o in outcomes), outcomes

    with DagsterInstance.from_config(str(home)) as instance:
        (start_a, end_a, version_a), (start_b, end_b, version_b) = (
            _step_window(instance, o["run_id"]) for o in outcomes
        )
        single_version = _step_window(instance, single.run_id)[2]
    assert max(start_a, start_b) < min(end_a, end_b), "the two steps ran one after the other, not at once"
    assert version_a == version_b == single_version

    assert data_tree(data_root) == data_tree(single_root)
    assert_nothing_stray(data_root)
    for manifest in data_root.rglob("*.parquet"):
        pq.read_table(manifest)
    if asset == "training_tensors":
        tensors = current_tensors(DataLayout(data_root), "b1")
        assert tensors is not None and tensors.read_stream("train").shape[0] == tensors.meta["counts"]["train"]
