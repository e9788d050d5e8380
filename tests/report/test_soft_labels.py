"""Soft labels of arm (c), the feature extractor's tempered probabilities of each synthetic image, read from the
extractor file the pipeline writes, and a classifier trained on them (distillation on synthetic inputs); and arm (c)
pre-trained on the synthetic images, then fine-tuned on real ones within the same step budget."""

from __future__ import annotations

import pytest
import torch

from synthaug.core.layout import DataLayout
from synthaug.models.metrics.classifier import ClassifierConfig, save_classifier, train_classifier
from synthaug.report.arms import classifier_config, train_arm
from synthaug.report.data import ReportConfig
from synthaug.report.soft import soft_targets, with_soft_targets
from synthaug.tensors.norm_stats import NormStats
from tests.report.helpers import CLASSES, report_data

TINY = {"num_classes": 3, "width": 4, "feature_dim": 8, "batch_size": 16, "shift": 0}


@pytest.fixture(scope="module")
def extractor(garments):
    """A small extractor trained on the real train garments, as the feature_extractor asset trains one."""
    with torch.random.fork_rng():
        return train_classifier(*garments["train"], ClassifierConfig(**TINY, steps=30)).model


def test_tempered_probabilities_keep_the_extractors_ranking_and_spread_with_temperature(garments, extractor):
    images = garments["synthetic"][0]
    affine = NormStats(1, 32, 90, 0, (0.3,), (0.3,), (0,), (255,), CLASSES).affine("gan")
    sharp, smooth = (soft_targets(extractor, images, affine, t) for t in (1.0, 4.0))
    assert sharp.shape == (len(images), len(CLASSES)) and torch.allclose(sharp.sum(1), torch.ones(len(images)))
    assert torch.equal(sharp.argmax(1), smooth.argmax(1))
    assert (smooth.max(1).values <= sharp.max(1).values + 1e-6).all()
    assert smooth.max(1).values.mean() < sharp.max(1).values.mean()
    with pytest.raises(ValueError, match="temperature"):
        soft_targets(extractor, images, affine, 0.0)


def test_soft_targets_come_from_the_extractor_file_and_arm_c_trains_on_them(tmp_path, garments, extractor):
    layout = DataLayout(tmp_path)
    stats = NormStats(1, 32, 90, 0, (0.3,), (0.3,), (0,), (255,), CLASSES)
    data = report_data(garments)
    with pytest.raises(FileNotFoundError, match="materialize feature_extractor or set synthetic_labels"):
        with_soft_targets(data, layout, stats, 2.0)
    layout.feature_extractor_path().parent.mkdir(parents=True, exist_ok=True)
    save_classifier(extractor, layout.feature_extractor_path())
    soft = with_soft_targets(data, layout, stats, 2.0)
    assert soft.synthetic_soft.shape == (len(data.synthetic[0]), len(CLASSES)) and data.synthetic_soft is None

    config = ReportConfig(steps=8, batch_size=16, width=4, evaluations=2, synthetic_per_batch=8)
    soft_config = ReportConfig(**{**config.__dict__, "synthetic_labels": "soft"})
    with pytest.raises(ValueError, match="with_soft_targets"):
        train_arm(data, soft_config, "c", seed=0)
    assert train_arm(soft, soft_config, "c", seed=0).steps == 8
    hard_b, soft_b = train_arm(soft, config, "b", seed=0), train_arm(soft, soft_config, "b", seed=0)
    assert (hard_b.val_accuracy, hard_b.best_step) == (soft_b.val_accuracy, soft_b.best_step)  # only (c) changes


def test_soft_labels_are_checked_and_need_synthetic_images_in_every_batch(garments):
    x, y = garments["train"]
    config = ClassifierConfig(**TINY, steps=3, extra_per_batch=4)
    with pytest.raises(ValueError, match="soft labels must be"):
        train_classifier(x, y, config, extra=(x[:5], torch.full((5, 2), 0.5)))
    hard = train_classifier(x, y, config, extra=garments["synthetic"]).model
    soft = train_classifier(x, y, config, extra=(garments["synthetic"][0], torch.full((90, 3), 1 / 3))).model
    assert not torch.equal(hard.head.weight, soft.head.weight)  # the uniform targets pulled the head elsewhere
    with pytest.raises(ValueError, match="needs synthetic_per_batch"):
        ReportConfig(synthetic_labels="soft", synthetic_per_batch=0)
    with pytest.raises(ValueError, match="synthetic_labels must be one of"):
        ReportConfig(synthetic_labels="fuzzy")


def test_pretraining_on_synthetic_then_fine_tuning_keeps_the_step_budget(garments):
    data = report_data(garments)
    config = ReportConfig(steps=10, batch_size=16, width=4, evaluations=2, synthetic_schedule="pretrain")
    assert (config.pretrain_steps(10), ReportConfig().pretrain_steps(225)) == (3, 0)
    clf = classifier_config(data, config, "c", seed=0)
    assert (clf.extra_pretrain_steps, clf.steps, clf.extra_per_batch) == (3, 7, 0)
    assert classifier_config(data, config, "b", seed=0).extra_pretrain_steps == 0
    run = train_arm(data, config, "c", seed=0)
    assert run.steps == 10 and 3 < run.best_step <= 10  # the checkpoint is chosen while fine-tuning on real images
    x, y = garments["train"]
    tiny = ClassifierConfig(**TINY, steps=2)
    plain = train_classifier(x, y, tiny).model
    pretrained = train_classifier(
        x, y, ClassifierConfig(**{**tiny.__dict__, "extra_pretrain_steps": 3}), extra=data.synthetic
    )
    assert not torch.equal(plain.head.weight, pretrained.model.head.weight) and pretrained.steps == 5
