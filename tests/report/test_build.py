"""The augmentation report's arithmetic (t intervals, paired gain), the `recommended` rule both ways, the unlabeled
path, the classifier options the arms rely on, and a tiny real run of the three arms on Fashion-MNIST garments."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb
from PIL import Image

from synthaug.core.compute import torch_threads
from synthaug.core.plots import ARM_COLOURS
from synthaug.models.metrics.classifier import ClassifierConfig, accuracy, train_classifier
from synthaug.report.arms import ARMS, SeedRun, classifier_config, train_arm
from synthaug.report.build import AugmentationReport, build_report
from synthaug.report.data import ReportConfig, ReportData
from synthaug.report.pictures import arms_plot_png, per_class_plot_png
from synthaug.report.stats import mean_ci, paired_gain, t_critical
from synthaug.report.verdict import decide
from synthaug.report.write import read_report, write_report

CLASSES = ("T-shirt_top", "Trouser", "Pullover")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models on a shared 2-core machine: one torch thread is faster and deterministic."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def garments(fashion_train) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Disjoint real Fashion-MNIST parts of 3 classes, padded to 1×32×32: train, its flipped copies as the
    'classic' stream, val, test, and other real garments standing in for a synthetic set."""
    images, labels = fashion_train
    cuts = {"train": (0, 30), "val": (30, 50), "test": (50, 90), "synthetic": (90, 120)}
    parts = {}
    for name, (lo, hi) in cuts.items():
        picks = np.concatenate([np.flatnonzero(labels == c)[lo:hi] for c in range(len(CLASSES))])
        x = torch.nn.functional.pad(torch.from_numpy(images[picks].copy()).unsqueeze(1), (2, 2, 2, 2))
        parts[name] = (x, torch.from_numpy(labels[picks].astype(np.int64)))
    parts["train_aug"] = (parts["train"][0].flip(3), parts["train"][1].clone())
    return parts


def _data(garments, **overrides) -> ReportData:
    return ReportData(classes=CLASSES, **{**garments, **overrides})


def _runs(val: dict[str, list[float]], test: dict[str, list[float]]) -> list[SeedRun]:
    """Hand-made seed runs with the given val and test accuracies per arm."""
    return [
        SeedRun(arm, seed, val[arm][seed], test[arm][seed], [test[arm][seed]] * len(CLASSES), 10, 10, 0.1)
        for arm in val
        for seed in range(len(val[arm]))
    ]


def test_t_critical_values_match_the_tables():
    assert t_critical(2) == pytest.approx(4.3026527, abs=1e-6)  # n = 3 seeds
    assert t_critical(1) == pytest.approx(12.7062047, abs=1e-6)
    assert t_critical(4) == pytest.approx(2.7764451, abs=1e-6)
    assert t_critical(29) == pytest.approx(2.0452296, abs=1e-6)
    assert t_critical(2, 0.90) == pytest.approx(2.9199856, abs=1e-6)
    with pytest.raises(ValueError, match="degree of freedom"):
        t_critical(0)
    with pytest.raises(ValueError, match="confidence"):
        t_critical(2, 1.0)


def test_mean_ci_by_hand_for_three_seeds():
    ci = mean_ci([0.80, 0.82, 0.84])
    # s = 0.02, half width = t(2) * s / sqrt(3) = 4.302653 * 0.02 / 1.7320508 = 0.0496828
    assert ci.mean == pytest.approx(0.82)
    assert ci.half_width == pytest.approx(0.0496828, abs=1e-6)
    assert (ci.low, ci.high, ci.n) == (pytest.approx(0.7703172, abs=1e-6), pytest.approx(0.8696828, abs=1e-6), 3)
    single = mean_ci([0.5])
    assert (single.low, single.high, single.half_width) == (None, None, None)


def test_paired_gain_uses_per_seed_differences():
    # every seed gains exactly one point: the paired CI is [+1, +1] although the arms' own CIs overlap widely
    gain = paired_gain([0.80, 0.85, 0.90], [0.79, 0.84, 0.89])
    assert gain.mean == pytest.approx(0.01) and gain.low == pytest.approx(0.01) and gain.excludes_zero_above()
    assert mean_ci([0.80, 0.85, 0.90]).low < mean_ci([0.79, 0.84, 0.89]).high
    # differences 0.02, 0.03, 0.01: mean 0.02, s 0.01, half width 4.302653 * 0.01 / sqrt(3) = 0.0248414
    noisy = paired_gain([0.85, 0.86, 0.84], [0.83, 0.83, 0.83])
    assert noisy.half_width == pytest.approx(0.0248414, abs=1e-6) and not noisy.excludes_zero_above()
    with pytest.raises(ValueError, match="one value per seed"):
        paired_gain([0.1, 0.2], [0.1])


def test_recommended_when_synthetic_wins_on_val(garments):
    val = {"a": [0.70, 0.71, 0.72], "b": [0.80, 0.81, 0.80], "c": [0.82, 0.83, 0.83]}
    test = {"a": [0.70, 0.70, 0.70], "b": [0.80, 0.80, 0.80], "c": [0.81, 0.82, 0.81]}
    report = build_report(_data(garments), ReportConfig(cas=False), runs=_runs(val, test))
    assert report.recommended
    assert report.verdict.startswith("RECOMMENDED") and "validation split" in report.verdict
    assert report.gain_val.mean == pytest.approx(0.0233333, abs=1e-6) and report.gain_val.excludes_zero_above()
    assert report.gain_test.mean == pytest.approx(0.0133333, abs=1e-6)
    assert [row["arm"] for row in report.arm_table()] == [f"({k}) {v}" for k, v in ARMS.items()]


def test_not_recommended_when_it_loses_on_val_even_if_it_wins_on_test(garments):
    val = {"a": [0.70, 0.70, 0.70], "b": [0.82, 0.83, 0.82], "c": [0.80, 0.81, 0.81]}
    test = {"a": [0.70, 0.70, 0.70], "b": [0.80, 0.80, 0.80], "c": [0.85, 0.86, 0.85]}
    report = build_report(_data(garments), ReportConfig(cas=False), runs=_runs(val, test))
    assert not report.recommended
    assert report.gain_test.excludes_zero_above() and report.gain_val.mean < 0
    assert report.verdict.startswith("NOT RECOMMENDED") and "never used to decide" in report.verdict


def test_an_undertrained_baseline_and_an_implausible_gain_are_flagged(garments):
    val = {"a": [0.85, 0.86, 0.85], "b": [0.80, 0.81, 0.80], "c": [0.82, 0.83, 0.83]}
    test = {"a": [0.80, 0.80, 0.80], "b": [0.70, 0.70, 0.71], "c": [0.80, 0.81, 0.80]}
    report = build_report(_data(garments), ReportConfig(cas=False, steps=50), runs=_runs(val, test))
    assert report.recommended and len(report.warnings) == 2
    assert "undertrained at 50 steps" in report.warnings[0] and "leakage" in report.warnings[1]
    assert report.verdict.endswith(report.warnings[1])


def _colours(png: bytes) -> set[tuple[int, int, int]]:
    """Every RGB colour in a PNG."""
    return {colour for _, colour in Image.open(io.BytesIO(png)).convert("RGB").getcolors(maxcolors=1 << 20)}


def test_plots_draw_every_arm_in_its_colour_and_say_why_when_there_is_nothing(garments):
    val = {"a": [0.70, 0.71, 0.72], "b": [0.80, 0.81, 0.80], "c": [0.82, 0.83, 0.83]}
    test = {"a": [0.70, 0.72, 0.70], "b": [0.80, 0.81, 0.80], "c": [0.81, 0.82, 0.81]}
    report = build_report(_data(garments), ReportConfig(cas=False), runs=_runs(val, test))
    arm_colours = {tuple(round(255 * c) for c in to_rgb(ARM_COLOURS[key])) for key in ARMS}
    assert arm_colours == {(127, 127, 127), (31, 119, 180), (214, 39, 40)}
    for png in (arms_plot_png(report), per_class_plot_png(report)):
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and arm_colours <= _colours(png)
    assert Image.open(io.BytesIO(arms_plot_png(report, width=400))).size == (400, 24 + 34 * 6 + 34)
    empty = AugmentationReport(labeled=False, recommended=False, verdict="", classes=())
    for png in (arms_plot_png(empty), per_class_plot_png(empty)):
        colours = _colours(png)
        assert min(map(sum, colours)) < 100, "dark text says why there is no plot"
        assert not {(31, 119, 180), (214, 39, 40)} & colours


def test_a_val_gain_whose_ci_includes_zero_is_not_recommended_unless_asked():
    gain = paired_gain([0.85, 0.86, 0.84], [0.83, 0.83, 0.86])
    assert gain.mean > 0 and not gain.excludes_zero_above()
    recommended, verdict = decide(gain, None, require_val_ci=True)
    assert not recommended and "includes zero" in verdict
    recommended, verdict = decide(gain, None, require_val_ci=False)
    assert recommended and verdict.startswith("RECOMMENDED")
    assert decide(None, None, True)[0] is False


def test_unlabeled_data_reports_what_it_could_not_measure(garments):
    empty = (torch.empty(0, 1, 32, 32, dtype=torch.uint8), torch.empty(0, dtype=torch.long))
    data = ReportData(classes=(), train=empty, train_aug=empty, val=empty, test=empty, synthetic=empty)
    report = build_report(data, ReportConfig())
    assert not report.labeled and not report.recommended and not report.arms
    assert "not measurable" in report.verdict and "labeled" in report.verdict
    assert any("CAS" in item for item in report.not_measured)
    assert report.to_dict()["gain_val"] is None


def test_labeled_data_without_a_test_split_names_the_missing_split(garments):
    no_test = (garments["test"][0][:0], garments["test"][1][:0])
    report = build_report(_data(garments, test=no_test), ReportConfig())
    assert not report.labeled and not report.recommended and not report.arms
    assert "0 test images" in report.verdict and "test split(s)" in report.verdict
    assert "training_tensors" in report.verdict and "Without labels" not in report.verdict
    assert "CAS: needs labeled test images" in report.not_measured


def test_classifier_step_budget_shift_and_val_selection(garments):
    x, y = garments["train"]
    val = garments["val"]
    config = ClassifierConfig(num_classes=3, width=4, feature_dim=8, batch_size=16, steps=7, val_every=3, shift=0)
    small = train_classifier(x[:40], y[:40], config, val=val)
    large = train_classifier(torch.cat([x, x]), torch.cat([y, y]), config, val=val)
    assert small.steps == large.steps == 7  # the same budget whatever the data size
    assert small.best_step in (3, 6, 7) and small.val_accuracy == accuracy(small.model, *val)
    mixed = train_classifier(x, y, ClassifierConfig(**{**config.__dict__, "extra_per_batch": 4}), extra=val)
    assert mixed.steps == 7
    with pytest.raises(ValueError, match="shift"):
        ClassifierConfig(shift=16)


def test_arms_differ_only_in_data(garments):
    data, config = _data(garments), ReportConfig(steps=12)
    a, b, c = (classifier_config(data, config, arm, seed=5) for arm in "abc")
    assert (a.shift, a.flip, b.shift, b.flip) == (0, False, 2, True)
    same = ("width", "lr", "steps", "seed", "batch_size", "val_every", "num_classes")
    assert all(getattr(a, k) == getattr(b, k) == getattr(c, k) for k in same)
    assert (b.extra_per_batch, c.extra_per_batch) == (0, config.synthetic_per_batch)


def test_an_arm_trains_and_is_chosen_on_val_without_a_test_split(garments):
    """A data root made with test_ratio 0 (as the low-data benchmark makes) still allows val-only choices."""
    no_test = (garments["test"][0][:0], garments["test"][1][:0])
    config = ReportConfig(steps=12, batch_size=16, width=4, evaluations=3)
    run = train_arm(_data(garments, test=no_test), config, "b", seed=0)
    assert 0 <= run.val_accuracy <= 1 and run.best_step is not None
    assert math.isnan(run.test_accuracy) and run.per_class_test == [None] * len(CLASSES)
    with_test = train_arm(_data(garments), config, "b", seed=0)
    assert with_test.val_accuracy == run.val_accuracy and 0 <= with_test.test_accuracy <= 1


def test_tiny_real_run_of_the_three_arms(tmp_path, garments):
    config = ReportConfig(seeds=2, steps=12, batch_size=16, width=4, evaluations=3, synthetic_per_batch=8)
    report = build_report(_data(garments), config)
    assert set(report.arms) == set(ARMS)
    for arm in report.arms.values():
        assert arm.test.n == 2 and [r.steps for r in arm.runs] == [12, 12]
        assert arm.test.low <= arm.test.mean <= arm.test.high
        assert set(arm.per_class_test) == set(CLASSES)
        assert math.isclose(np.mean([r.test_accuracy for r in arm.runs]), arm.test.mean)
    b, c = report.arms["b"].runs, report.arms["c"].runs
    differences = [y.test_accuracy - x.test_accuracy for x, y in zip(b, c, strict=True)]
    assert report.gain_test.mean == pytest.approx(np.mean(differences))
    assert report.cas is not None and 0 <= report.cas["cas"] <= 1 and report.cas["cas_n"] == 90
    assert report.verdict.startswith(("RECOMMENDED", "NOT RECOMMENDED"))

    written = write_report(report, tmp_path / "report", _data(garments))
    document = read_report(tmp_path / "report")
    assert document["recommended"] == report.recommended and document["verdict"] == report.verdict
    assert document["arms"]["c"]["test"]["n"] == 2 and len(document["arms"]["c"]["runs"]) == 2
    for name in document["files"].values():
        assert (tmp_path / "report" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert written.samples_png is not None and json.loads(written.report_json.read_text())["labeled"]
