"""`augmentation_report` through a real Dagster instance on landed Fashion-MNIST: a tiny GAN, its synthetic set, the
three arms, the report on disk, the verdict and plots in the metadata, and the `synthetic_set_recommended` check
(WARN when not recommended); a clear failure when there is no synthetic set yet."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetCheckSeverity, AssetKey, materialize

from assets.augmentation_report import augmentation_report
from synthaug.core.layout import DataLayout
from synthaug.report.write import read_report
from tests.assets.test_gan_checkpoint import _metadata, _prepare, _resources, _train
from tests.assets.test_synthetic_images import _synthesize
from tests.dagster_runs import step_error, step_failure

# 6 steps: every baseline is noise, so any (b) counts as sound here (the rule itself: tests/report/test_baseline.py)
REPORT = {"seeds": 3, "steps": 6, "batch_size": 16, "width": 4, "evaluations": 2, "synthetic_per_batch": 8}
REPORT |= {"baseline_tolerance": 0.5, "classic_shares": [1.0, 0.0]}


def _report(instance, landing: Path, data_root: Path, **config):
    return materialize(
        [augmentation_report],
        instance=instance,
        resources=_resources(landing, data_root),
        run_config={"ops": {"augmentation_report": {"config": {**REPORT, **config}}}},
        raise_on_error=False,
    )


def _check(result):
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "synthetic_set_recommended"
    return evaluation


def test_report_verdict_plots_and_check_then_a_set_with_nothing_accepted_is_flagged(
    instance, make_batch, landing, data_root
):
    make_batch("b1", per_class=30, classes=3)
    _prepare(instance, landing, data_root)
    assert _train(instance, landing, data_root, steps=2).success
    assert _synthesize(instance, landing, data_root, ratio=0.5, min_confidence=0.0, seed=1).success

    result = _report(instance, landing, data_root)
    assert result.success
    meta = _metadata(instance, "augmentation_report")
    document = read_report(DataLayout(data_root).report_dir())
    assert Path(meta["path"]) == DataLayout(data_root).report_dir()
    assert meta["recommended"] == document["recommended"] and meta["verdict"] == f"**{document['verdict']}**"
    assert set(document["arms"]) == {"a", "b", "c"} and document["arms"]["c"]["test"]["n"] == 3
    assert all(run["steps"] == 6 for arm in document["arms"].values() for run in arm["runs"])
    assert "| (c) real + classic + synthetic |" in meta["arms"]
    assert meta["baseline_sound"] and "| classic recipe | (b) val accuracy |" in meta["baseline"]
    assert "| no classic augmentation |" in meta["baseline"] and "| share 1 of the classic copies |" in meta["baseline"]
    assert document["baseline"]["classic_share"] in (1.0, 0.0) and len(document["baseline"]["candidates"]) == 3
    assert {"gain_test_points", "gain_val_points", "cas", "memorization_rate", "confidence_reject_rate"} <= set(meta)
    for key in ("arms_plot", "per_class_plot", "real_vs_synthetic"):
        assert meta[key].count("data:image/png;base64,") == 1
    check = _check(result)
    assert check.passed == document["recommended"] and check.severity == AssetCheckSeverity.WARN
    assert check.description == document["verdict"]
    first_a = document["arms"]["a"]["runs"]
    assert len(list(DataLayout(data_root).arm_runs_dir().glob("*.json"))) == 3 * 3, "(a) and two (b) recipes"

    # soft labels: arm (c) learns the feature extractor's tempered probabilities of each synthetic image; two
    # synthetic weights: the one kept is chosen on half 1 of val, the verdict measured on half 2
    soft = {"synthetic_labels": "soft", "soft_temperature": 3.0, "synthetic_weights": [0.3, 1.0]}
    assert _report(instance, landing, data_root, cas=False, **soft).success
    document, meta = read_report(DataLayout(data_root).report_dir()), _metadata(instance, "augmentation_report")
    assert document["config"]["synthetic_labels"] == "soft" and document["arms"]["c"]["test"]["n"] == 3
    assert len(document["synthetic_choice"]["candidates"]) == 2 and "half 1 of val" in document["verdict"]
    assert "| synthetic weight | per batch | (c) accuracy on val half 1 |" in meta["synthetic_choice"]

    # every candidate rejected: arm (c) cannot be trained, so the set is not recommended and the check warns
    assert _synthesize(instance, landing, data_root, ratio=0.25, min_confidence=1.0, max_rounds=1, seed=2).success
    result = _report(instance, landing, data_root, cas=False)
    assert result.success
    check = _check(result)
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.description.startswith("NOT RECOMMENDED")
    document = read_report(DataLayout(data_root).report_dir())
    assert set(document["arms"]) == {"a", "b"} and not document["recommended"]
    assert any("no accepted" in item for item in document["not_measured"])
    assert document["arms"]["a"]["runs"] == first_a, "(a) read back from the first report: same images and settings"


def test_without_a_synthetic_set_the_report_fails_clearly(instance, landing, data_root):
    result = _report(instance, landing, data_root)
    assert not result.success
    failure = step_failure(result, "augmentation_report")
    description = failure.user_failure_data.description
    assert "no synthetic set yet" in description and "materialize synthetic_images first" in description
    assert instance.get_latest_materialization_event(AssetKey("augmentation_report")) is None


def test_fewer_than_three_seeds_is_refused_before_any_work(instance, landing, data_root):
    error = step_error(_report(instance, landing, data_root, seeds=2), "augmentation_report")
    assert "seeds" in error and "greater than or equal to 3" in error
