"""Rare and emptied classes through a real Dagster instance on landed Fashion-MNIST: a class left with 1 image and
a class cleaning empties are left out of generation with a warning while every other class is generated; a
landing with one usable class fails at the start of the first model asset, before any training."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from dagster import AssetKey, DagsterInstance, materialize

from assets.clean_images import clean_images
from assets.feature_extractor import feature_extractor
from assets.gan_checkpoint import gan_checkpoint
from assets.normalization_stats import normalization_stats
from assets.raw_images import raw_images
from assets.synthetic_images import synthetic_images
from assets.training_tensors import training_tensors
from pipelines.cli import _model_lines
from resources.compute import ComputeResource
from resources.storage import StorageResource
from synthaug.core.layout import DataLayout
from synthaug.ingest.demo_data import CLASS_NAMES
from synthaug.synthetic.readback import read_synthetic
from synthaug.tensors.readback import current_tensors
from tests.dagster_runs import materialize_batch, step_failure

BATCH_OPS = {"clean_images": {"blur_mode": "off"}, "training_tensors": {"workers": 1}}
EXTRACTOR = {"epochs": 1, "min_steps": 20, "width": 8}
GAN = {"budget_minutes": None, "budget_steps": 2, "batch_size": 16, "width": 8, "z_dim": 16}


def _models(instance: DagsterInstance, data_root: Path, assets: list, ops: dict):
    """Materialize unpartitioned model assets on `data_root` with their configs; failures are returned."""
    return materialize(
        assets,
        instance=instance,
        resources={"storage": StorageResource(data_root=str(data_root)), "compute": ComputeResource(threads=1)},
        run_config={"ops": {name: {"config": config} for name, config in ops.items()}},
        raise_on_error=False,
    )


def _metadata(instance: DagsterInstance, key: str) -> dict:
    event = instance.get_latest_materialization_event(AssetKey(key))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _warnings(instance: DagsterInstance, run_id: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id) if e.level >= 30 and e.user_message]


def test_a_class_with_one_image_and_an_emptied_class_are_left_out_of_generation_only(
    instance, make_batch, landing, data_root, fashion_train
):
    images, labels = fashion_train
    batch = make_batch("b1", per_class=120, classes=3, ready=False)
    rare = CLASS_NAMES[3]
    (batch / rare).mkdir()
    cv2.imwrite(str(batch / rare / "only.png"), images[np.flatnonzero(labels == 3)[0]])
    (batch / "Bag").mkdir()
    for value in (0, 90, 200):  # flat images: cleaning removes every one as low information
        cv2.imwrite(str(batch / "Bag" / f"flat-{value}.png"), np.full((28, 28), value, np.uint8))
    (batch / "_READY").touch()
    assert materialize_batch(
        [raw_images, clean_images, training_tensors], instance, landing, data_root, "b1", BATCH_OPS
    ).success
    layout = DataLayout(data_root)
    rare_train = current_tensors(layout, "b1").meta["per_class"]["train"].get(rare, 0)

    result = _models(
        instance,
        data_root,
        [normalization_stats, feature_extractor, gan_checkpoint],
        {"feature_extractor": EXTRACTOR, "gan_checkpoint": {**GAN, "metric_samples_per_class": 10}},
    )
    assert result.success
    gan = _metadata(instance, "gan_checkpoint")
    assert gan["excluded_classes"] == {rare: rare_train, "Bag": 0}
    assert f"'{rare}' ({rare_train} train image" in gan["excluded_classes_note"]
    assert "'Bag' (0 train images, every image removed by cleaning)" in gan["excluded_classes_note"]
    assert any("left out of generation" in m for m in _warnings(instance, result.run_id))
    assert gan["worst_class"] in CLASS_NAMES[:3] and 0 <= gan["worst_class_recall"] <= 1
    assert "| class | precision | recall |" in gan["per_class_quality"]
    assert not any(key.startswith("class0_") for key in gan)
    summary = next(line for line in _model_lines(instance) if line.startswith("gan_checkpoint:"))
    assert (
        f"worst class {gan['worst_class']} (recall" in summary
        and f"not generated: {', '.join(sorted([rare, 'Bag']))}" in summary
    )

    result = _models(instance, data_root, [synthetic_images], {"synthetic_images": {"ratio": 0.1, "min_confidence": 0}})
    assert result.success
    synthetic = _metadata(instance, "synthetic_images")
    assert synthetic["excluded_classes"] == {rare: rare_train, "Bag": 0}
    assert any("left out of generation" in m for m in _warnings(instance, result.run_id))
    data = read_synthetic(layout)
    assert set(data.meta["per_class"]) == set(CLASS_NAMES[:3])
    assert all(c["accepted"] == c["planned"] > 0 for c in data.meta["per_class"].values())
    assert {p.name for p in (data.path / "images").iterdir()} == set(CLASS_NAMES[:3])
    assert rare not in set(data.manifest["class_name"])


def test_a_landing_with_one_usable_class_fails_at_the_start_of_the_first_model(
    instance, make_batch, landing, data_root, fashion_train
):
    images, labels = fashion_train
    batch = make_batch("b1", per_class=40, classes=1, ready=False)
    (batch / CLASS_NAMES[1]).mkdir()
    cv2.imwrite(str(batch / CLASS_NAMES[1] / "only.png"), images[np.flatnonzero(labels == 1)[0]])
    (batch / "_READY").touch()
    assert materialize_batch(
        [raw_images, clean_images, training_tensors], instance, landing, data_root, "b1", BATCH_OPS
    ).success
    layout = DataLayout(data_root)

    result = _models(instance, data_root, [normalization_stats, feature_extractor], {"feature_extractor": EXTRACTOR})
    failure = step_failure(result, "feature_extractor").user_failure_data.description
    assert "at least 2 classes with 2 or more train images" in failure
    assert f"'{CLASS_NAMES[0]}': " in failure and f"'{CLASS_NAMES[1]}': " in failure
    assert "Land more images of at least one other class" in failure
    assert not layout.feature_extractor_path().exists()
    assert not any("classifier epoch" in e.user_message for e in instance.all_logs(result.run_id))

    result = _models(instance, data_root, [gan_checkpoint], {"gan_checkpoint": GAN})
    assert "at least 2 classes with 2 or more" in step_failure(result, "gan_checkpoint").user_failure_data.description
    assert not layout.gan_checkpoints_dir().exists()
