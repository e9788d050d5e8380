"""CAS once: the report takes the CAS gan_checkpoint stored for the checkpoint its synthetic set came from, and
measures it itself only when that checkpoint's metrics are not stored (here: the GAN trained on after sampling)."""

from __future__ import annotations

from synthaug.core.layout import DataLayout
from synthaug.report.write import read_report
from tests.assets.test_augmentation_report import _report
from tests.assets.test_gan_checkpoint import _metadata, _prepare, _train
from tests.assets.test_synthetic_images import _synthesize


def test_the_report_reuses_the_cas_of_its_synthetic_sets_checkpoint(instance, make_batch, landing, data_root):
    make_batch("b1", per_class=120, classes=3)
    _prepare(instance, landing, data_root)
    assert _train(instance, landing, data_root, steps=2).success
    gan = _metadata(instance, "gan_checkpoint")
    assert _synthesize(instance, landing, data_root, ratio=0.5, min_confidence=0.0, seed=1).success

    assert _report(instance, landing, data_root).success
    cas = read_report(DataLayout(data_root).report_dir())["cas"]
    assert cas["cas_source"].startswith("gan_checkpoint, step 2:")
    assert (cas["cas"], cas["cas_real_accuracy"], cas["cas_ratio"]) == (gan["cas"], gan["cas_floor"], gan["cas_ratio"])

    assert _train(instance, landing, data_root, steps=3).success  # the stored metrics are step 3's now
    assert _report(instance, landing, data_root).success
    cas = read_report(DataLayout(data_root).report_dir())["cas"]
    assert cas["cas_source"] == "measured by the report on the accepted synthetic images"
    assert _metadata(instance, "augmentation_report")["cas"] == round(cas["cas"], 4)
