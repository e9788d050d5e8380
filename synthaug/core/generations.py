"""A generation store: an output folder whose complete results each live in their own `g-<UTC time>-<id>` folder,
with `current.json` naming the published one, so readers never see a partial result.

Layout under the store's folder:

* `current.json`: `{"generation": ..., "data_version": ...}`, replaced atomically and only once the generation it
  names is complete;
* `g-YYYYMMDDTHHMMSS-<8 hex>/`: one complete generation;
* `.g-....partial/`: a generation being written; it is renamed into place once complete.

Leftovers of a killed run (partial folders, generations never published) are removed by the next run. A store
made with `keep_replaced` keeps the generation a publish replaced until the following one, so a reader that
resolved the old pointer can finish reading it. Callers hold the output's lock while they write.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from synthaug.core.atomic import atomic_write_bytes, storage_error

POINTER_NAME = "current.json"
PREFIX = "g-"


def new_generation_name() -> str:
    """A fresh generation folder name: UTC time (sorts by age) and a random suffix (two runs in one second)."""
    return f"{PREFIX}{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Draft:
    """A generation being written: its final name and the hidden folder to write it in."""

    name: str
    folder: Path


@dataclass(frozen=True)
class GenerationStore:
    """The generations of one output folder and the pointer to the published one (see the module docstring)."""

    root: Path
    keep_replaced: bool = False

    @property
    def pointer(self) -> Path:
        """`current.json`, naming the published generation."""
        return self.root / POINTER_NAME

    def path(self, generation: str) -> Path:
        """The folder of one generation."""
        return self.root / generation

    def current(self) -> tuple[str, str] | None:
        """(generation, data_version) named by `current.json`, or None when nothing has been published."""
        if not self.pointer.is_file():
            return None
        info = json.loads(self.pointer.read_text())
        return str(info["generation"]), str(info["data_version"])

    def current_name(self) -> str | None:
        """The published generation's folder name, or None."""
        current = self.current()
        return current[0] if current else None

    @contextmanager
    def draft(self) -> Iterator[Draft]:
        """Yield a new generation's staging folder, after removing leftovers of killed runs; on success rename it
        into place (not yet published: call `publish`), on any error remove it."""
        name = new_generation_name()
        staging = self.root / f".{name}.partial"
        self.remove_stale(keep={self.current_name()})
        try:
            staging.mkdir(parents=True)
        except OSError as exc:
            raise storage_error(staging, exc) from exc
        try:
            yield Draft(name, staging)
            final = self.path(name)
            try:
                os.rename(staging, final)
            except OSError as exc:
                raise storage_error(final, exc) from exc
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def publish(self, generation: str, data_version: str) -> None:
        """Point `current.json` at a complete generation, then remove the generations no reader needs any more.

        If the pointer cannot be written, the new generation is removed unless the pointer already names it."""
        replaced = self.current_name()
        try:
            self.switch_pointer(generation, data_version)
        except BaseException:
            if self.current_name() != generation:
                shutil.rmtree(self.path(generation), ignore_errors=True)
            raise
        self.remove_stale(keep={generation, replaced} if self.keep_replaced else {generation})

    def switch_pointer(self, generation: str, data_version: str) -> None:
        """Replace `current.json` atomically."""
        pointer = {"generation": generation, "data_version": data_version}
        atomic_write_bytes(self.pointer, (json.dumps(pointer) + "\n").encode())

    def remove_stale(self, keep: set[str | None]) -> None:
        """Delete the generations not in `keep` and the partial ones of killed runs (the caller holds the lock)."""
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            if entry.is_dir() and entry.name not in keep and entry.name.startswith((PREFIX, f".{PREFIX}")):
                shutil.rmtree(entry, ignore_errors=True)
