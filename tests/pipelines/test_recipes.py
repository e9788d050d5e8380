"""The README's everyday recipes, each performed against a real on-disk instance with tiny Fashion-MNIST batches:
new data arrived, change a threshold and rerun one stage (exactly its downstream goes stale), retrain now."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
    SensorResult,
    SkipReason,
    build_sensor_context,
    evaluate_automation_conditions,
)
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from pipelines import cli
from pipelines.definitions import defs
from pipelines.sensors import landing_sensor, training_growth_sensor
from resources.storage import LandingResource
from tests.pipelines.cheap_runs import cheap_ops, materialize_cheap
from tests.pipelines.services import dagster_daemon

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
INTERVAL_VARIABLES = (
    "SYNTHAUG_SENSOR_INTERVAL_SECONDS",
    "SYNTHAUG_GROWTH_SENSOR_INTERVAL_SECONDS",
    "SYNTHAUG_AUTOMATION_INTERVAL_SECONDS",
)
FOLLOW_ONS = {"synthetic_images", "augmentation_report"} & {
    k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()
}
BASE_CONFIG = json.dumps({"ops": cheap_ops(copies=1)})  # JSON is YAML: the CLI's --config
BLUR_CONFIG = """
ops:
  clean_images: {config: {blur_mode: percentile, blur_percentile: 30, workers: 1}}
"""
TINY_MODELS = """
ops:
  feature_extractor: {config: {epochs: 1, min_steps: 20, width: 8}}
  gan_checkpoint: {config: {budget_minutes: null, budget_steps: 2, batch_size: 8, width: 8, z_dim: 8,
                            metric_samples_per_class: 4}}
"""


@pytest.fixture
def env(tmp_path: Path, landing: Path, data_root: Path) -> dict[str, str]:
    """Environment of a user's shell: a data root, the landing folder and a DAGSTER_HOME, all temporary."""
    out = dict(os.environ, SYNTHAUG_DATA_ROOT=str(data_root), SYNTHAUG_LANDING_DIR=str(landing))
    out.update(DAGSTER_HOME=str(tmp_path / "home"), NO_ALBUMENTATIONS_UPDATE="1", SYNTHAUG_DEVICE="cpu")
    out.update(OMP_NUM_THREADS="1")
    return out


def synthaug(env: dict[str, str], tmp_path: Path, *args: str, config: str | None = None) -> str:
    """Run the `synthaug` command as the README writes it; `config` is written to a run-config file first."""
    if config is not None:
        path = tmp_path / f"run-{abs(hash(config))}.yaml"
        path.write_text(config)
        args = (*args, "--config", str(path))
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def register(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`synthaug register`, in this process (one interpreter start less than the command)."""
    for name in ("DAGSTER_HOME", "SYNTHAUG_LANDING_DIR"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.delenv("SYNTHAUG_INSTANCE", raising=False)
    assert cli.main(["register", "--quiet-period", "0"]) == 0


def _instance(env: dict[str, str]) -> DagsterInstance:
    return DagsterInstance.from_config(env["DAGSTER_HOME"])


def _status(instance: DagsterInstance, graph=None) -> CachingStaleStatusResolver:
    """The stale-status resolver the UI uses, over the code location's asset graph (or a variant of it)."""
    return CachingStaleStatusResolver(instance, graph or defs.resolve_asset_graph(), LoadingContextForTest(instance))


def _versions(instance: DagsterInstance) -> dict[tuple[str, str | None], str]:
    """Current data version of every cheap asset partition."""
    resolver = _status(instance)
    out = {}
    for name, parts in (
        ("raw_images", ["b1", "b2"]),
        ("clean_images", ["b1", "b2"]),
        ("training_tensors", ["b1", "b2"]),
        ("normalization_stats", [None]),
    ):
        for part in parts:
            out[name, part] = resolver.get_current_data_version(AssetKey(name), part).value
    return out


def _stale(instance: DagsterInstance, graph=None) -> set[tuple[str, str | None]]:
    resolver = _status(instance, graph)
    cheap = [(n, p) for n in ("raw_images", "clean_images", "training_tensors") for p in ("b1", "b2")]
    return {
        (n, p)
        for n, p in [*cheap, ("normalization_stats", None)]
        if resolver.get_status(AssetKey(n), p) == StaleStatus.STALE
    }


def _materializations(instance: DagsterInstance, name: str, partition: str) -> int:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(name), asset_partitions=[partition]), limit=100
    ).records
    return len(records)


def _metadata(instance: DagsterInstance, name: str) -> dict:
    event = instance.get_latest_materialization_event(AssetKey(name))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_recipe_change_a_threshold_and_rerun_one_stage(env, tmp_path, landing, data_root, make_batch, monkeypatch):
    """Rerunning clean_images[b1] with a blur threshold marks exactly its dependent training_tensors[b1] stale;
    rerunning that marks the statistics stale (Dagster's staleness goes one hop per rerun, and only where a data
    version changed); rerunning those reproduces everything else unchanged."""
    make_batch("b1", per_class=6)
    make_batch("b2", per_class=6, offset=20)
    register(env, monkeypatch)
    with _instance(env) as instance:
        for batch in ("b1", "b2"):
            materialize_cheap(
                instance, landing, data_root, ["raw_images", "clean_images", "training_tensors"], batch, copies=1
            )
        materialize_cheap(instance, landing, data_root, ["normalization_stats"], None, copies=1)
        before = _versions(instance)
        assert _stale(instance) == set()

    synthaug(env, tmp_path, "materialize", "--select", "clean_images", "--partition", "b1", config=BLUR_CONFIG)
    with _instance(env) as instance:
        assert _metadata(instance, "clean_images")["removed_by_reason"]["blurry"] > 0
        assert _stale(instance) == {("training_tensors", "b1")}
        changed = _versions(instance)
        assert changed["clean_images", "b1"] != before["clean_images", "b1"]
        assert _without(changed, ("clean_images", "b1")) == _without(before, ("clean_images", "b1"))

    synthaug(env, tmp_path, "materialize", "--select", "training_tensors", "--partition", "b1", config=BASE_CONFIG)
    with _instance(env) as instance:
        assert _stale(instance) == {("normalization_stats", None)}
        assert _versions(instance)["training_tensors", "b1"] != before["training_tensors", "b1"]

    synthaug(env, tmp_path, "materialize", "--select", "normalization_stats")
    with _instance(env) as instance:
        assert _stale(instance) == set()
        after = _versions(instance)
        assert after["normalization_stats", None] != before["normalization_stats", None]
        for key in [("raw_images", "b1"), ("raw_images", "b2"), ("clean_images", "b2"), ("training_tensors", "b2")]:
            assert after[key] == before[key], key
        assert _materializations(instance, "training_tensors", "b2") == 1, "b2 must not be rerun"
        assert _materializations(instance, "clean_images", "b2") == 1

        bumped = defs.map_resolved_asset_specs(
            func=lambda spec: spec.replace_attributes(code_version="2"), selection="clean_images"
        ).resolve_asset_graph()
        assert _stale(instance, bumped) == {("clean_images", "b1"), ("clean_images", "b2")}, (
            "a new code version marks that stage stale in every batch, and nothing upstream"
        )


def _without(versions: dict, key: tuple) -> dict:
    return {k: v for k, v in versions.items() if k != key}


def _requested(
    instance: DagsterInstance, cursor, ignore: set[str] | frozenset[str] = frozenset()
) -> tuple[dict[str, set], object]:
    """One automation tick: requested partitions per asset (leaving out `ignore`), and the next cursor."""
    result = evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    graph = defs.resolve_asset_graph()
    requested = {k.to_user_string(): result.get_requested_partitions(k) for k in graph.get_all_asset_keys()}
    return {k: set(v) for k, v in requested.items() if v and k not in ignore}, result.cursor


def test_recipe_new_data_arrived(instance, make_batch, landing, data_root):
    """A folder with _READY lands: the sensors and the automation take it from ingest to a training request."""
    requested, cursor = _requested(instance, None)  # the automation sensor ticks long before data lands
    assert requested == {}
    ignore: set[str] = set()
    for batch, offset in (("b1", 0), ("b2", 20)):
        make_batch(batch, per_class=6, offset=offset)
        tick = landing_sensor(
            build_sensor_context(instance=instance, resources={"landing": LandingResource(landing_dir=str(landing))})
        )
        assert isinstance(tick, SensorResult) and [r.partition_key for r in tick.run_requests] == [batch]
        instance.add_dynamic_partitions(tick.dynamic_partitions_requests[0].partitions_def_name, [batch])
        materialize_cheap(instance, landing, data_root, ["raw_images"], batch, copies=1)

        requested, cursor = _requested(instance, cursor, ignore)
        assert requested == {"clean_images": {batch}, "training_tensors": {batch}}
        materialize_cheap(instance, landing, data_root, ["clean_images", "training_tensors"], batch, copies=1)
        requested, cursor = _requested(instance, cursor, ignore)
        assert requested == {"normalization_stats": {None}}
        materialize_cheap(instance, landing, data_root, ["normalization_stats"], None, copies=1)
        assert _requested(instance, cursor, ignore)[0] == {}

        growth = training_growth_sensor(build_sensor_context(instance=instance))
        if batch == "b1":
            assert isinstance(growth, RunRequest) and growth.run_key == "training-growth:first"
            counted = _metadata(instance, "normalization_stats")["num_train_images"]
            instance.report_runless_asset_event(
                AssetMaterialization("gan_checkpoint", metadata={"num_train_images": counted})
            )  # stands in for the requested training run (performed for real in test_recipe_retrain_now)
            requested, cursor = _requested(instance, cursor)
            assert set(requested) == FOLLOW_ONS, "the synthetic set and report follow the new checkpoint"
            ignore = FOLLOW_ONS  # no run stands in for theirs: still missing, they are requested on every tick
        else:
            assert isinstance(growth, RunRequest), "b2 doubles the train set: more than the 20 % default"
    assert _metadata(instance, "normalization_stats")["batches"].keys() == {"b1", "b2"}


def test_recipe_retrain_now(env, tmp_path, make_batch, monkeypatch):
    """Retraining by hand records the train-image count, so the growth sensor rests until the data grows again."""
    make_batch("b1", per_class=8)
    register(env, monkeypatch)
    synthaug(
        env, tmp_path, "materialize", "--select", "raw_images,clean_images,training_tensors,normalization_stats",
        config=BASE_CONFIG,
    )  # fmt: skip
    synthaug(env, tmp_path, "materialize", "--select", "feature_extractor,gan_checkpoint", config=TINY_MODELS)
    with _instance(env) as instance:
        trained = _metadata(instance, "gan_checkpoint")
        assert trained["num_train_images"] == _metadata(instance, "normalization_stats")["num_train_images"] > 8
        assert trained["step"] == 2
        resting = training_growth_sensor(build_sensor_context(instance=instance))
        assert isinstance(resting, SkipReason) and "+0.0%" in resting.skip_message
        resolver = _status(instance)
        for model in ("feature_extractor", "gan_checkpoint"):
            assert resolver.get_status(AssetKey(model)) == StaleStatus.FRESH


@pytest.mark.slow
def test_backfill_every_batch_from_the_cli(env, tmp_path, landing, data_root, make_batch, monkeypatch):
    """`dagster job backfill -j batch_stages --all` queues one run per batch; the daemon runs them."""
    make_batch("b1", per_class=6)
    make_batch("b2", per_class=6, offset=20)
    register(env, monkeypatch)
    with _instance(env) as instance:
        for batch in ("b1", "b2"):
            materialize_cheap(instance, landing, data_root, ["raw_images"], batch, copies=1)
    quiet = {name: "3600" for name in INTERVAL_VARIABLES}  # only the backfill's runs, no sensor-launched ones
    daemon_env = {**env, **quiet}
    backfill = subprocess.run(
        [str(BIN / "dagster"), "job", "backfill", "-w", "workspace.yaml", "-j", "batch_stages", "--all", "all",
         "--noprompt"],
        cwd=REPO, env=daemon_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert backfill.returncode == 0, backfill.stdout + backfill.stderr
    with _instance(env) as instance:
        queued = instance.get_runs(RunsFilter(job_name="batch_stages"))
        assert sorted(r.tags["dagster/partition"] for r in queued) == ["b1", "b2"]
        assert all(r.status == DagsterRunStatus.QUEUED for r in queued) and len(instance.get_backfills()) == 1
        run_ids = [r.run_id for r in queued]

    log = tmp_path / "daemon.log"
    with dagster_daemon(daemon_env, log):
        deadline = time.monotonic() + 300
        while True:
            with _instance(env) as instance:
                runs = [instance.get_run_by_id(run_id) for run_id in run_ids]
            if all(r.is_finished for r in runs):
                break
            assert time.monotonic() < deadline, f"backfill runs not finished after 300 s:\n{log.read_text()[-3000:]}"
            time.sleep(1)
    assert all(r.status == DagsterRunStatus.SUCCESS for r in runs), log.read_text()[-3000:]
    with _instance(env) as instance:
        for name in ("clean_images", "training_tensors"):
            assert instance.get_materialized_partitions(AssetKey(name)) == {"b1", "b2"}
        assert _stale(instance) == set()
