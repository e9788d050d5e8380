"""Automation against a real instance: a new batch requests exactly its per-batch stages and then the statistics;
training comes from the schedule and the growth sensor only; the synthetic set follows a new checkpoint only."""

from __future__ import annotations

import datetime
import importlib

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    evaluate_automation_conditions,
    materialize,
)
from dagster._core.test_utils import create_run_for_test

from assets.partitions import BATCHES
from pipelines import schedules
from pipelines.definitions import defs
from pipelines.sensors import training_growth_sensor
from resources.storage import LandingResource, StorageResource
from tests.pipelines.cheap_runs import CHEAP, materialize_cheap

ALL_KEYS = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}


def _requested(result) -> dict[str, set[str | None]]:
    """Requested partitions per asset name, leaving out assets with none."""
    out = {}
    for name in sorted(ALL_KEYS):
        parts = result.get_requested_partitions(AssetKey(name))
        if parts:
            out[name] = set(parts)
    return out


class Ticks:
    """Successive automation-sensor evaluations of the real definitions, carrying the cursor like the daemon."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance, self.cursor = instance, None

    def __call__(self) -> dict[str, set[str | None]]:
        result = evaluate_automation_conditions(defs=defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        return _requested(result)


def _report(instance: DagsterInstance, asset: str, **metadata) -> None:
    instance.report_runless_asset_event(AssetMaterialization(asset, metadata=metadata))


def test_a_new_batch_requests_exactly_its_per_batch_stages_then_the_statistics(
    instance, make_batch, landing, data_root
):
    tick = Ticks(instance)
    assert tick() == {}

    for batch, earlier in (("b1", []), ("b2", ["b1"])):
        make_batch(batch, per_class=4, offset=10 * len(earlier))
        instance.add_dynamic_partitions(BATCHES, [batch])
        assert tick() == {}, "nothing runs before the landing sensor's ingest run"
        materialize_cheap(instance, landing, data_root, ["raw_images"], batch)

        assert tick() == {"clean_images": {batch}, "training_tensors": {batch}}
        materialize_cheap(instance, landing, data_root, ["clean_images", "training_tensors"], batch)

        assert tick() == {"normalization_stats": {None}}
        materialize_cheap(instance, landing, data_root, ["normalization_stats"], None)
        assert tick() == {}


def test_statistics_never_run_without_tensors_and_are_not_blocked_by_a_missing_batch(instance):
    tick = Ticks(instance)
    instance.add_dynamic_partitions(BATCHES, ["b1", "b2"])
    assert tick() == {}, "no batch has tensors: the statistics would fail"
    instance.report_runless_asset_event(AssetMaterialization("training_tensors", partition="b1"))
    assert tick() == {"normalization_stats": {None}}, "b2 still missing must not block the statistics"
    _report(instance, "normalization_stats", num_train_images=10)
    assert tick() == {}


def _complete_graph(instance: DagsterInstance, follow_ons: set[str]) -> None:
    """Every unpartitioned asset materialized once (reported before the sensor's first tick, as old history)."""
    for name in ("normalization_stats", "feature_extractor", "gan_checkpoint", *sorted(follow_ons)):
        _report(instance, name, num_train_images=100)


def test_follow_ons_run_after_a_new_checkpoint_and_not_after_new_data(instance):
    follow_ons = {"synthetic_images", "augmentation_report"} & ALL_KEYS
    tick = Ticks(instance)
    _complete_graph(instance, follow_ons)
    assert tick() == {}
    _report(instance, "normalization_stats", num_train_images=150)
    assert tick() == {}, "new data alone must neither retrain nor resample"

    _report(instance, "gan_checkpoint", num_train_images=150)
    requested = tick()
    assert set(requested) == follow_ons
    assert "gan_checkpoint" not in requested and "feature_extractor" not in requested


def test_gaps_with_their_upstream_present_are_filled_on_the_first_tick(instance):
    """Partitions missing when the sensor first looks run if their upstream is there (eager alone never would)."""
    follow_ons = {"synthetic_images", "augmentation_report"} & ALL_KEYS
    tick = Ticks(instance)
    instance.add_dynamic_partitions(BATCHES, ["b1", "b2"])
    instance.report_runless_asset_event(AssetMaterialization("raw_images", partition="b1"))
    for name in ("normalization_stats", "feature_extractor", "gan_checkpoint"):
        _report(instance, name, num_train_images=100)
    assert tick() == {
        "clean_images": {"b1"},
        "training_tensors": {"b1"},
        **{name: {None} for name in follow_ons},
    }, "b2 has no raw images yet, so only b1 and the synthetic set from the existing checkpoint"


def test_training_has_no_automation_condition_only_the_schedule_and_growth_sensor():
    graph = defs.resolve_asset_graph()
    for name in ("feature_extractor", "gan_checkpoint", "raw_images"):
        assert graph.get(AssetKey(name)).automation_condition is None
    for name in ("clean_images", "training_tensors", "normalization_stats"):
        assert graph.get(AssetKey(name)).automation_condition is not None
    assert defs.resolve_job_def("train_models").asset_layer.executable_asset_keys == {
        AssetKey("feature_extractor"),
        AssetKey("gan_checkpoint"),
    }


def test_every_automation_is_on_by_default_and_says_what_it_does():
    for name in ("landing_sensor", "training_growth_sensor", "synthaug_automation"):
        sensor = defs.resolve_sensor_def(name)
        assert sensor.default_status == DefaultSensorStatus.RUNNING
        assert len(sensor.description or "") > 60
    schedule = defs.resolve_schedule_def("training_schedule")
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    assert schedule.job_name == "train_models" and schedule.cron_schedule == "0 2 * * *"
    assert "SYNTHAUG_TRAINING_CRON" in schedule.description


def test_training_schedule_requests_training_on_its_tick_once_there_is_data(instance):
    tick = datetime.datetime(2026, 11, 26, 2, 0, tzinfo=datetime.UTC)
    context = build_schedule_context(instance=instance, scheduled_execution_time=tick)
    assert isinstance(schedules.training_schedule(context), SkipReason)

    _report(instance, "normalization_stats", num_train_images=10)
    request = schedules.training_schedule(build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert isinstance(request, RunRequest)
    assert request.run_key == "training-schedule:2026-11-26T02:00+00:00"
    assert request.tags["synthaug/trigger"] == "schedule"


def test_training_cron_and_timezone_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("SYNTHAUG_TRAINING_CRON", "*/30 * * * *")
    monkeypatch.setenv("SYNTHAUG_TRAINING_TIMEZONE", "Europe/Berlin")
    try:
        module = importlib.reload(schedules)
        assert module.training_schedule.cron_schedule == "*/30 * * * *"
        assert module.training_schedule.execution_timezone == "Europe/Berlin"
    finally:
        monkeypatch.undo()
        importlib.reload(schedules)


def _growth(instance: DagsterInstance) -> RunRequest | SkipReason:
    return training_growth_sensor(build_sensor_context(instance=instance))


def test_growth_sensor_requests_training_once_per_growth_step(instance, monkeypatch):
    monkeypatch.delenv("SYNTHAUG_TRAINING_GROWTH_SHARE", raising=False)
    assert isinstance(_growth(instance), SkipReason)

    _report(instance, "normalization_stats", num_train_images=100)
    first = _growth(instance)
    assert isinstance(first, RunRequest) and first.run_key == "training-growth:first"

    _report(instance, "gan_checkpoint", num_train_images=100)
    checkpoint = instance.fetch_materializations(AssetKey("gan_checkpoint"), limit=1).records[0].storage_id
    _report(instance, "normalization_stats", num_train_images=119)
    below = _growth(instance)
    assert isinstance(below, SkipReason)
    assert below.skip_message == "119 train images now, 100 at the last checkpoint (+19.0%); retrain at 120"

    _report(instance, "normalization_stats", num_train_images=120)
    grown = _growth(instance)
    assert isinstance(grown, RunRequest) and grown.run_key == f"training-growth:{checkpoint}"
    assert grown.tags["synthaug/trigger"] == "growth"
    _report(instance, "normalization_stats", num_train_images=130)
    assert _growth(instance).run_key == grown.run_key, "the same step must not request a second training"

    _report(instance, "gan_checkpoint", num_train_images=130)
    assert isinstance(_growth(instance), SkipReason)


def test_growth_share_comes_from_the_environment(instance, monkeypatch):
    monkeypatch.setenv("SYNTHAUG_TRAINING_GROWTH_SHARE", "0.5")
    _report(instance, "gan_checkpoint", num_train_images=100)
    _report(instance, "normalization_stats", num_train_images=140)
    assert isinstance(_growth(instance), SkipReason)
    _report(instance, "normalization_stats", num_train_images=150)
    assert isinstance(_growth(instance), RunRequest)


def test_growth_sensor_waits_while_a_training_run_is_running(instance):
    _report(instance, "normalization_stats", num_train_images=50)
    create_run_for_test(instance, job_name="train_models", status=DagsterRunStatus.STARTED)
    skipped = _growth(instance)
    assert isinstance(skipped, SkipReason) and "already queued or running" in skipped.skip_message


@pytest.mark.parametrize("value", ["0", "lots"])
def test_invalid_growth_share_names_the_variable_value(instance, monkeypatch, value):
    monkeypatch.setenv("SYNTHAUG_TRAINING_GROWTH_SHARE", value)
    _report(instance, "normalization_stats", num_train_images=50)
    with pytest.raises(Exception, match="0.2"):
        _growth(instance)


def test_a_partition_whose_run_failed_is_not_retried_every_tick(instance, landing, data_root):
    instance.add_dynamic_partitions(BATCHES, ["b1"])
    instance.report_runless_asset_event(AssetMaterialization("raw_images", partition="b1"))  # no files behind it
    failed = materialize(
        CHEAP,
        selection=["clean_images"],
        instance=instance,
        partition_key="b1",
        resources={"storage": StorageResource(data_root=str(data_root)), "landing": LandingResource(landing_dir=".")},
        raise_on_error=False,
    )
    assert not failed.success
    tick = Ticks(instance)
    assert tick() == {} and tick() == {}, "a failed partition waits for a person (or a new upstream)"
