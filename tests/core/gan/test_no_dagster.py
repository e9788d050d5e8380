"""The GAN and metrics core is a plain library: importing all of it must not import dagster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import synthaug.gan
import synthaug.metrics


def test_core_modules_do_not_import_dagster():
    modules = ["synthaug.compute"] + [
        f"{package.__name__}.{path.stem}"
        for package in (synthaug.gan, synthaug.metrics)
        for path in sorted(Path(package.__path__[0]).glob("*.py"))
        if path.stem != "__init__"
    ]
    code = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\nprint('dagster' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"one of {modules} imports dagster"
    assert len(modules) >= 15
