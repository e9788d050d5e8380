"""The report takes CAS from the GAN's stored metrics when they are for the synthetic set's checkpoint and data, and
measures it only otherwise (its steps logged, counted, not timed)."""

from __future__ import annotations

from synthaug.models.metrics.fid import MetricValue
from synthaug.models.metrics.store import save_metrics
from synthaug.report.cas import report_cas, stored_cas
from synthaug.report.data import ReportConfig
from tests.report.helpers import report_data

TINY = ReportConfig(steps=4, batch_size=16, width=4, evaluations=1, seeds=2)


def test_the_cas_gan_checkpoint_stored_is_reused_for_its_checkpoint_and_data_only(tmp_path, garments):
    cas = MetricValue("cas", 0.61, 0.8, 2000, {"cas_ratio": 0.7625})
    save_metrics(tmp_path, 1200, "data-1", {"fid": MetricValue("fid", 9.0, 2.0, 2000), "cas": cas})
    stored = stored_cas(tmp_path, 1200, "data-1")
    assert stored is not None and "step 1200" in stored["cas_source"]
    assert (stored["cas"], stored["cas_real_accuracy"], stored["cas_ratio"], stored["cas_n"]) == (
        0.61,
        0.8,
        0.7625,
        2000,
    )
    assert stored_cas(tmp_path, 1500, "data-1") is None and stored_cas(tmp_path, 1200, "data-2") is None
    lines: list[str] = []
    assert report_cas(report_data(garments), TINY, stored, lines.append) == (stored, None)
    assert lines == []  # nothing trained
    assert report_cas(report_data(garments), ReportConfig(cas=False), stored) == (None, "CAS: switched off")


def test_without_a_stored_cas_the_report_measures_it_and_says_so(garments):
    lines: list[str] = []
    cas, missing = report_cas(report_data(garments), TINY, None, lines.append)
    assert missing is None and 0 <= cas["cas"] <= 1 and cas["cas_n"] == len(garments["synthetic"][0])
    assert cas["cas_source"] == "measured by the report on the accepted synthetic images"
    steps = [line for line in lines if line.startswith("CAS classifier steps: ")]
    assert steps[0].startswith("CAS classifier steps: 1/8,") and steps[-1].startswith("CAS classifier steps: 8/8,")
