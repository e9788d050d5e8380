"""The report's plots: every arm in its colour, the requested size, and a message instead of a plot without arms."""

from __future__ import annotations

import io

from matplotlib.colors import to_rgb
from PIL import Image

from synthaug.core.plots import ARM_COLOURS
from synthaug.report.arms import ARMS
from synthaug.report.build import AugmentationReport, build_report
from synthaug.report.data import ReportConfig
from synthaug.report.pictures import arms_plot_png, per_class_plot_png
from tests.report.helpers import report_data, seed_runs


def _colours(png: bytes) -> set[tuple[int, int, int]]:
    """Every RGB colour in a PNG."""
    return {colour for _, colour in Image.open(io.BytesIO(png)).convert("RGB").getcolors(maxcolors=1 << 20)}


def test_plots_draw_every_arm_in_its_colour_and_say_why_when_there_is_nothing(garments):
    val = {"a": [0.70, 0.71, 0.72], "b": [0.80, 0.81, 0.80], "c": [0.82, 0.83, 0.83]}
    test = {"a": [0.70, 0.72, 0.70], "b": [0.80, 0.81, 0.80], "c": [0.81, 0.82, 0.81]}
    report = build_report(report_data(garments), ReportConfig(cas=False), runs=seed_runs(val, test))
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
