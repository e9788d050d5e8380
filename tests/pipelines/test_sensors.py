"""The landing sensor against a real instance: new, incomplete, empty, invalid and already-seen batches."""

from __future__ import annotations

import json
from pathlib import Path

from dagster import DagsterInstance, SensorResult, SkipReason, build_sensor_context

from assets.partitions import BATCHES
from pipelines.sensors import ingest_run_key, landing_sensor
from resources.storage import LandingResource


def _tick(instance: DagsterInstance, landing: Path, cursor: str | None = None, quiet: float = 120.0):
    context = build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"landing": LandingResource(landing_dir=str(landing), quiet_period_seconds=quiet)},
    )
    return landing_sensor(context), context.cursor


def test_ready_batch_is_registered_and_requested_once(instance, make_batch, landing):
    make_batch("b1")
    result, _ = _tick(instance, landing)
    assert isinstance(result, SensorResult)
    assert [(r.partition_key, r.run_key) for r in result.run_requests] == [("b1", "raw_images:b1")]
    assert result.dynamic_partitions_requests[0].partition_keys == ["b1"]
    assert result.dynamic_partitions_requests[0].partitions_def_name == BATCHES


def test_already_registered_batch_is_not_requested_again(instance, make_batch, landing):
    make_batch("b1")
    instance.add_dynamic_partitions(BATCHES, ["b1"])
    result, _ = _tick(instance, landing)
    assert isinstance(result, SkipReason)
    assert "no new batches" in result.skip_message


def test_batch_being_written_waits_for_quiet_period(instance, make_batch, landing):
    """Without _READY a batch is ingested only after it stops changing for the quiet period."""
    batch = make_batch("b2", ready=False)
    result, cursor = _tick(instance, landing, quiet=3600)
    assert isinstance(result, SkipReason) and "still changing" in result.skip_message
    assert "b2" in json.loads(cursor)

    result, cursor = _tick(instance, landing, cursor, quiet=3600)
    assert isinstance(result, SkipReason) and "quiet period" in result.skip_message

    (batch / "Trouser" / "late.png").write_bytes((batch / "Trouser" / "img-000.png").read_bytes())
    result, cursor = _tick(instance, landing, cursor, quiet=0)
    assert isinstance(result, SkipReason) and "still changing" in result.skip_message

    result, cursor = _tick(instance, landing, cursor, quiet=0)
    assert isinstance(result, SensorResult)
    assert [r.partition_key for r in result.run_requests] == ["b2"]
    assert json.loads(cursor) == {}


def test_ready_marker_short_cuts_the_quiet_period(instance, make_batch, landing):
    batch = make_batch("b3", ready=False)
    result, cursor = _tick(instance, landing, quiet=3600)
    assert isinstance(result, SkipReason)
    (batch / "_READY").touch()
    result, _ = _tick(instance, landing, cursor, quiet=3600)
    assert isinstance(result, SensorResult) and result.run_requests[0].run_key == ingest_run_key("b3")


def test_empty_and_invalid_batches_are_skipped(instance, landing):
    (landing / "empty").mkdir()
    (landing / "empty" / "_READY").touch()
    bad = landing / "bad name!"
    (bad / "cls").mkdir(parents=True)
    (bad / "cls" / "a.png").write_bytes(b"x")
    (bad / "_READY").touch()
    (landing / ".staging").mkdir()
    result, _ = _tick(instance, landing, quiet=0)
    assert isinstance(result, SkipReason)
    assert "marked ready but holds no files" in result.skip_message
    assert not instance.get_dynamic_partitions(BATCHES)


def test_landing_folder_that_does_not_exist_yet_is_not_an_error(instance, tmp_path):
    result, _ = _tick(instance, tmp_path / "nowhere")
    assert isinstance(result, SkipReason)
