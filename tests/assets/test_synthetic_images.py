"""`synthetic_images` materialized through a real Dagster instance after a tiny GAN trained on landed Fashion-MNIST:
the ImageFolder tree, manifest and metadata; and the clear failure when no checkpoint exists yet."""

from __future__ import annotations

import json
from pathlib import Path

from dagster import AssetKey, materialize

from assets.synthetic_images import synthetic_images
from resources.compute import ComputeResource
from resources.storage import StorageResource
from synthaug.core.layout import DataLayout
from synthaug.synthetic.readback import read_synthetic
from tests.assets.test_gan_checkpoint import _metadata, _prepare, _resources, _train
from tests.dagster_runs import step_error, step_failure


def _synthesize(instance, landing: Path, data_root: Path, **config):
    return materialize(
        [synthetic_images],
        instance=instance,
        resources=_resources(landing, data_root),
        run_config={"ops": {"synthetic_images": {"config": config}}},
        raise_on_error=False,
    )


def test_materializes_the_imagefolder_tree_and_reports_the_filters(instance, make_batch, landing, data_root):
    make_batch("b1", per_class=40, classes=3)
    _prepare(instance, landing, data_root)
    assert _train(instance, landing, data_root, steps=2).success
    result = _synthesize(instance, landing, data_root, ratio=0.25, min_confidence=0.2, seed=1)
    assert result.success
    meta = _metadata(instance, "synthetic_images")
    data = read_synthetic(DataLayout(data_root))
    assert Path(meta["path"]) == data.path
    assert meta["images"] == len(data.images) and meta["candidates"] == len(data.manifest)
    assert meta["checkpoint_step"] == 2 and meta["checkpoint_version"] == data.checkpoint_version
    assert 0 <= meta["confidence_rejection_rate"] <= 1 and 0 <= meta["memorization_rate"] <= 1
    assert meta["confidence_filter"] == "on"
    assert "| class | planned |" in meta["per_class"]
    assert meta["samples"].count("data:image/png;base64,") == 1
    if meta["rejected"]:
        assert meta["rejected_samples"].count("data:image/png;base64,") == 1
    folders = {p.name for p in (data.path / "images").iterdir()}
    assert folders <= set(data.classes) and folders
    assert all((data.path / p).is_file() for p in data.manifest["path"])
    event = instance.get_latest_materialization_event(AssetKey("synthetic_images"))
    assert event.asset_materialization.tags["dagster/data_version"] == data.data_version

    chosen = _synthesize(instance, landing, data_root, ratio=0.25, min_confidence=0.2, seed=1, selection="coverage")
    assert chosen.success
    covered = read_synthetic(DataLayout(data_root))
    left_out = covered.manifest[covered.manifest["reject_reason"] == "not_selected"]
    assert len(left_out) and covered.data_version != data.data_version
    meta = _metadata(instance, "synthetic_images")
    assert "| not selected |" in meta["per_class"] and meta["images"] == len(covered.images) <= meta["planned"]

    assert _synthesize(instance, landing, data_root, ratio=0.25, min_confidence=0.2, seed=1, latent_scale=1.5).success
    wider = read_synthetic(DataLayout(data_root))
    assert wider.data_version not in {data.data_version, covered.data_version}
    assert json.loads((wider.path / "meta.json").read_text())["config"]["latent_scale"] == 1.5

    anchored = {"ratio": 0.25, "min_confidence": 0.2, "seed": 1, "anchor": "real", "anchor_steps": 3}
    result = _synthesize(instance, landing, data_root, **anchored)
    assert result.success
    varied = read_synthetic(DataLayout(data_root))
    assert (varied.manifest["anchor_train_row"] >= 0).all() and varied.meta["anchors"]["reconstruction_mse"] > 0
    logged = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any(m.startswith("anchors: real train images inverted: ") for m in logged)


def test_without_a_checkpoint_the_asset_fails_clearly_and_is_not_materialized(instance, landing, data_root):
    result = materialize(
        [synthetic_images],
        instance=instance,
        resources={"storage": StorageResource(data_root=str(data_root)), "compute": ComputeResource(device="cpu")},
        raise_on_error=False,
    )
    assert not result.success
    failure = step_failure(result, "synthetic_images")
    assert "materialize gan_checkpoint first" in failure.user_failure_data.description
    assert instance.get_latest_materialization_event(AssetKey("synthetic_images")) is None


def test_an_out_of_range_config_fails_before_any_work(instance, landing, data_root):
    error = step_error(_synthesize(instance, landing, data_root, min_confidence=1.5), "synthetic_images")
    assert "min_confidence" in error and "less than or equal to 1" in error and "input_value=1.5" in error
    error = step_error(_synthesize(instance, landing, data_root, selection="nearest"), "synthetic_images")
    assert "selection must be one of ['first', 'coverage', 'boundary']" in error and "'nearest'" in error
    error = step_error(_synthesize(instance, landing, data_root, latent_scale=0), "synthetic_images")
    assert "latent_scale" in error and "greater than 0" in error
    error = step_error(_synthesize(instance, landing, data_root, anchor="fake"), "synthetic_images")
    assert "anchor must be one of ['none', 'real']" in error and "'fake'" in error
    assert not DataLayout(data_root).synthetic_dir().exists()
