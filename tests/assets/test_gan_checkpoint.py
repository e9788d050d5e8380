"""`feature_extractor` and `gan_checkpoint` materialized through a real Dagster instance on landed Fashion-MNIST:
a few training steps end to end, pictures and metrics in the metadata, resume on rematerialization, clear errors."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey, DagsterInstance, materialize

from assets.clean_images import clean_images
from assets.feature_extractor import feature_extractor
from assets.gan_checkpoint import gan_checkpoint
from assets.normalization_stats import normalization_stats
from assets.partitions import BATCHES
from assets.raw_images import raw_images
from assets.training_tensors import training_tensors
from resources.compute import ComputeResource
from resources.storage import LandingResource, StorageResource
from tests.dagster_runs import step_error, step_failure

PER_BATCH = [raw_images, clean_images, training_tensors]
GAN = {"budget_minutes": None, "budget_steps": 3, "batch_size": 16, "width": 8, "z_dim": 16, "checkpoint_every": 2}


def _resources(landing: Path, data_root: Path, device: str = "cpu") -> dict:
    return {
        "storage": StorageResource(data_root=str(data_root)),
        "landing": LandingResource(landing_dir=str(landing)),
        "compute": ComputeResource(device=device, threads=1),
    }


def _prepare(instance: DagsterInstance, landing: Path, data_root: Path) -> None:
    """Raw, clean and tensors of one batch, then the statistics and a one-epoch feature extractor."""
    instance.add_dynamic_partitions(BATCHES, ["b1"])
    ops = {"clean_images": {"config": {"blur_mode": "off"}}, "training_tensors": {"config": {"workers": 1}}}
    res = _resources(landing, data_root)
    assert materialize(PER_BATCH, instance=instance, partition_key="b1", resources=res, run_config={"ops": ops}).success
    run_config = {"ops": {"feature_extractor": {"config": {"epochs": 1, "min_steps": 20, "width": 8}}}}
    assert materialize(
        [normalization_stats, feature_extractor], instance=instance, resources=res, run_config=run_config
    ).success


def _train(instance: DagsterInstance, landing: Path, data_root: Path, steps: int, device: str = "cpu", **extra):
    config = {**GAN, "budget_steps": steps, "metric_samples_per_class": 10, **extra}
    return materialize(
        [gan_checkpoint],
        instance=instance,
        resources=_resources(landing, data_root, device),
        run_config={"ops": {"gan_checkpoint": {"config": config}}},
        raise_on_error=False,
    )


def _metadata(instance: DagsterInstance, key: str) -> dict:
    event = instance.get_latest_materialization_event(AssetKey(key))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_a_few_steps_end_to_end_then_resume_from_the_checkpoint(instance, make_batch, landing, data_root):
    make_batch("b1", per_class=120, classes=3)
    _prepare(instance, landing, data_root)
    extractor = _metadata(instance, "feature_extractor")
    assert 0 <= extractor["val_accuracy"] <= 1
    assert extractor["train_steps"] == 20 and 1 <= extractor["best_step"] <= 20  # the min_steps floor, best val state

    assert _train(instance, landing, data_root, steps=3).success
    first = _metadata(instance, "gan_checkpoint")
    assert first["step"] == 3 and "resumed_from_step" not in first  # None values are left out
    assert Path(first["checkpoint"]).is_file()
    assert first["loss_curve"].count("data:image/png;base64,") == 1
    assert first["samples"].count("data:image/png;base64,") == 1
    assert {"fid", "kid"} <= {k.split("_")[0] for k in first}

    second_run = _train(instance, landing, data_root, steps=5)
    assert second_run.success
    second = _metadata(instance, "gan_checkpoint")
    assert (second["step"], second["resumed_from_step"]) == (5, 3)

    assert _train(instance, landing, data_root, steps=2, ada_target=0.6).success  # a lever: a new version
    adaptive = _metadata(instance, "gan_checkpoint")
    assert adaptive["version"] != second["version"] and adaptive["step"] == 2 and "resumed_from_step" not in adaptive

    mirrored = _train(instance, landing, data_root, steps=2, mirror="auto")  # training_tensors flips garments
    assert mirrored.success
    assert any("real images mirrored at random" in e.user_message for e in instance.all_logs(mirrored.run_id))
    assert not any("mirrored" in e.user_message for e in instance.all_logs(second_run.run_id))
    auto = _metadata(instance, "gan_checkpoint")["version"]
    assert _train(instance, landing, data_root, steps=2, mirror="on").success
    assert _metadata(instance, "gan_checkpoint")["version"] == auto != second["version"]
    failed = _train(instance, landing, data_root, steps=2, mirror="sometimes")
    assert "mirror must be one of off, on, auto" in step_error(failed, "gan_checkpoint")


def test_the_diffusion_family_trains_samples_and_measures_and_new_sampler_settings_reuse_it(
    instance, make_batch, landing, data_root
):
    make_batch("b1", per_class=100, classes=3)
    _prepare(instance, landing, data_root)
    assert _train(instance, landing, data_root, steps=2, family="diffusion", sample_steps=3).success
    first = _metadata(instance, "gan_checkpoint")
    assert first["step"] == 2 and first["samples"].count("data:image/png;base64,") == 1
    assert {"fid", "precision", "recall", "coverage"} <= set(first)

    assert _train(instance, landing, data_root, steps=2, family="diffusion", sample_steps=5, guidance=2.0).success
    second = _metadata(instance, "gan_checkpoint")
    assert (second["version"], second["step"], second["resumed_from_step"]) == (first["version"], 2, 2)


def test_cuda_requested_on_a_machine_without_it_fails_with_a_clear_message(instance, make_batch, landing, data_root):
    import torch

    if torch.cuda.is_available():
        return
    make_batch("b1", per_class=24, classes=3)
    _prepare(instance, landing, data_root)
    result = _train(instance, landing, data_root, steps=1, device="cuda")
    assert not result.success
    failure = step_failure(result, "gan_checkpoint")
    assert "cuda" in failure.user_failure_data.description
