"""Plot colours and matplotlib helpers for the PNG figures in metadata and reports. Figures are drawn on the Agg
canvas directly (no pyplot), so plotting never touches a global backend or needs a display."""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

DPI = 100
SERIES_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
ARM_COLOURS = {"a": "tab:gray", "b": "tab:blue", "c": "tab:red"}
FONT_SIZE = 8


def new_figure(width: int, height: int) -> Figure:
    """An empty figure of `width`×`height` pixels on an Agg canvas, laid out so labels are never clipped."""
    figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def figure_png(figure: Figure) -> bytes:
    """A figure as PNG bytes of exactly its pixel size, for metadata and report files."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def message_png(text: str, width: int, height: int) -> bytes:
    """A blank figure saying why there is nothing to plot; PNG bytes."""
    figure = new_figure(width, height)
    figure.text(0.02, 0.95, text, ha="left", va="top", fontsize=FONT_SIZE)
    return figure_png(figure)


def lighter(colour: str) -> tuple[float, float, float]:
    """`colour` mixed half-and-half with white, for a second series of the same group (val beside test)."""
    red, green, blue = to_rgb(colour)
    return 0.5 + red / 2, 0.5 + green / 2, 0.5 + blue / 2
