"""The report's pictures as PNG bytes: each arm's accuracy with its CI, per-class accuracy, and real next to
synthetic samples."""

from __future__ import annotations

from matplotlib.ticker import PercentFormatter

from synthaug.core.plots import ARM_COLOURS, FONT_SIZE, figure_png, lighter, message_png, new_figure
from synthaug.models.gan.sampling import sample_grid_png
from synthaug.models.metrics.classifier import as_float
from synthaug.report.build import AugmentationReport
from synthaug.report.data import ReportData


def arms_plot_png(report: AugmentationReport, *, width: int = 560, row: int = 34) -> bytes:
    """Dot plot of each arm's mean test and val accuracy with its confidence interval as a bar; PNG bytes."""
    arms = list(report.arms.values())
    height = 24 + row * max(len(arms), 1) * 2 + 34
    if not arms:
        return message_png("no arms were trained (unlabeled data)", width, height)
    figure = new_figure(width, height)
    axes = figure.add_subplot()
    labels = []
    for arm in arms:
        for split, interval in (("test", arm.test), ("val", arm.val)):
            position = len(labels)
            labels.append(f"({arm.key}) {arm.name} [{split}]")
            colour = ARM_COLOURS[arm.key] if split == "test" else lighter(ARM_COLOURS[arm.key])
            error = None
            if interval.low is not None and interval.high is not None:
                error = [[interval.mean - interval.low], [interval.high - interval.mean]]
            axes.errorbar(
                [interval.mean], [position], xerr=error, fmt="o", color=colour, markersize=6, linewidth=3, capsize=5
            )
    values = [v for a in arms for i in (a.test, a.val) for v in (i.low, i.high, i.mean) if v is not None]
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.1, 0.005)
    axes.set_xlim(max(0.0, lo - pad), min(1.0, hi + pad))
    axes.set_yticks(range(len(labels)), labels, fontsize=FONT_SIZE)
    axes.set_ylim(len(labels) - 0.5, -0.5)
    axes.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=1))
    axes.tick_params(labelsize=FONT_SIZE)
    axes.grid(True, axis="x", color="0.9")
    confidence = 100 * arms[0].test.confidence
    axes.set_title(f"accuracy, mean and {confidence:g}% CI over seeds", fontsize=FONT_SIZE)
    return figure_png(figure)


def per_class_plot_png(report: AugmentationReport, *, bar: int = 9, width: int = 560) -> bytes:
    """Horizontal bars: per-class test accuracy (mean over seeds) of each arm; PNG bytes."""
    arms = list(report.arms.values())
    classes = list(report.classes)
    height = 70 + (bar * max(len(arms), 1) + 8) * max(len(classes), 1)
    if not arms:
        return message_png("no per-class accuracy without labels", width, height)
    figure = new_figure(width, height)
    axes = figure.add_subplot()
    thickness = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        rows = [(r, value) for r, name in enumerate(classes) if (value := arm.per_class_test.get(name)) is not None]
        positions = [r + (i - (len(arms) - 1) / 2) * thickness for r, _ in rows]
        values = [value for _, value in rows]
        bars = axes.barh(
            positions, values, height=thickness, color=ARM_COLOURS[arm.key], label=f"({arm.key}) {arm.name}"
        )
        axes.bar_label(bars, labels=[f"{100 * v:.0f}" for v in values], padding=2, fontsize=FONT_SIZE - 1)
    axes.set_yticks(range(len(classes)), [name[:18] for name in classes], fontsize=FONT_SIZE)
    axes.set_ylim(len(classes) - 0.5, -0.5)
    axes.set_xlim(0, 1.08)
    axes.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    axes.tick_params(labelsize=FONT_SIZE)
    axes.set_xlabel("test accuracy, mean over seeds", fontsize=FONT_SIZE)
    figure.legend(loc="outside upper center", ncols=len(arms), fontsize=FONT_SIZE, frameon=False)
    return figure_png(figure)


def samples_png(data: ReportData, per_class: int = 8) -> bytes | None:
    """One row per class: real train images, then accepted synthetic ones (None without synthetic images)."""
    if not len(data.synthetic[0]) or not len(data.train[0]):
        return None
    return sample_grid_png(
        as_float(data.synthetic[0]),
        data.synthetic[1],
        as_float(data.train[0]),
        data.train[1],
        list(data.classes),
        per_class=per_class,
        scale=2,
    )
