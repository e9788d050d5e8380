"""What the reliability tests compare: every output file under a data root, and what readers must never see."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

TINY = {
    "ops": {
        "raw_images": {"config": {"workers": 1}},
        "clean_images": {"config": {"workers": 1}},
        "training_tensors": {"config": {"workers": 1, "size": 16, "copies": 2, "shard_size": 8}},
    }
}


def dagster_home(folder: Path) -> Path:
    """A DAGSTER_HOME as a user has it: the project's config/dagster.yaml (SQLite storage under `folder`)."""
    folder.mkdir(parents=True)
    shutil.copyfile(REPO / "config" / "dagster.yaml", folder / "dagster.yaml")
    return folder


def data_tree(root: Path) -> dict[str, str]:
    """sha256 of every file under the data root by relative path; a tensor generation's name reads `<generation>`
    (each materialization gets a fresh name by design) and `current.json` is compared without that name."""
    tree: dict[str, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).parts
        data = path.read_bytes()
        if rel[0] == "tensors" and len(rel) > 3:
            rel = (*rel[:2], "<generation>", *rel[3:])
        if rel[0] == "tensors" and rel[-1] == "current.json":
            data = json.dumps(json.loads(data) | {"generation": "<generation>"}).encode()
        tree["/".join(rel)] = hashlib.sha256(data).hexdigest()
    return tree


def assert_nothing_stray(root: Path) -> None:
    """Readers see one tensor generation per batch, and no hidden temporary or staging file is left."""
    hidden = [p for p in root.rglob(".*") if p.parent != root / ".locks" and p != root / ".locks"]
    assert not hidden, f"temporary files left behind: {hidden}"
    for batch in (root / "tensors").iterdir() if (root / "tensors").is_dir() else []:
        generations = [p.name for p in batch.iterdir() if p.is_dir()]
        current = json.loads((batch / "current.json").read_text())["generation"]
        assert generations == [current], f"{batch}: generations {generations}, current {current}"
