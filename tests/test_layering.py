"""The layering of the core: `synthaug/` never imports dagster (checked by importing every module in a fresh
interpreter), and a stage package imports only `core` and the stages before it (checked on the source)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "synthaug"
STAGES = ["core", "ingest", "clean", "tensors", "models", "synthetic", "report"]


def _modules() -> list[str]:
    return [
        ".".join(path.relative_to(CORE.parent).with_suffix("").parts)
        for path in sorted(CORE.rglob("*.py"))
        if path.stem != "__init__"
    ]


def test_every_stage_has_its_package_and_nothing_is_left_flat():
    assert sorted(p.name for p in CORE.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(STAGES)
    assert sorted(p.name for p in CORE.glob("*.py")) == ["__init__.py"]


def test_no_core_module_imports_dagster():
    modules = _modules()
    code = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\nprint('dagster' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "a module under synthaug/ imports dagster"
    assert len(modules) >= 50


def test_a_stage_imports_only_core_and_the_stages_before_it():
    wrong = []
    for path in sorted(CORE.rglob("*.py")):
        stage = path.relative_to(CORE).parts[0]
        if stage not in STAGES:
            continue
        allowed = set(STAGES[: STAGES.index(stage) + 1])
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] == "synthaug" and len(parts) > 1 and parts[1] not in allowed:
                    wrong.append(f"{path.relative_to(CORE.parent)} imports {name}")
    assert wrong == []
