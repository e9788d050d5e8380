"""Versioned, atomic, self-checking training checkpoints.

A checkpoint lives at `<root>/<version>/ckpt-<step>.pt`, where the version is a hash of the input data version and
the training configuration, so a run resumes only from checkpoints of the same data and settings. Each file is
written atomically (temporary sibling, fsync, rename) and carries a SHA-256 of its payload: a truncated or
corrupted file is detected on load and the previous good checkpoint is used instead. Only the last N are kept.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from synthaug.core.atomic import atomic_write_bytes
from synthaug.core.errors import InvalidInput, SynthaugError
from synthaug.core.processes import process_alive

MAGIC = b"SYNTHAUG-CKPT1\n"
_HEADER = struct.Struct(">32sQ")
_NAME = re.compile(r"^ckpt-(\d{9})\.pt$")
_TEMPORARY = re.compile(r"^\.ckpt-\d{9}\.pt\.tmp-(\d+)-[0-9a-f]+$")  # synthaug.core.atomic's naming


class CheckpointError(SynthaugError, ValueError):
    """A checkpoint file is unreadable; the message names the file and why."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: where it came from, its step, its state, and the files skipped as invalid."""

    path: Path
    version: str
    step: int
    state: dict[str, Any]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def version_key(data_version: str, config: Mapping[str, Any]) -> str:
    """16 hex digits of SHA-256 over the data version and the JSON-serialized config (key order irrelevant)."""
    text = json.dumps({"data": data_version, "config": config}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def checkpoint_path(root: Path, version: str, step: int) -> Path:
    """File name of the checkpoint of `version` at `step`."""
    return Path(root) / version / f"ckpt-{step:09d}.pt"


def encode(state: Mapping[str, Any]) -> bytes:
    """Serialize `state` with torch.save, framed by a magic line, its SHA-256 and its length."""
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    payload = buffer.getvalue()
    return MAGIC + _HEADER.pack(hashlib.sha256(payload).digest(), len(payload)) + payload


def decode(data: bytes, path: Path) -> dict[str, Any]:
    """Inverse of `encode`; raises CheckpointError naming `path` when the frame, length or checksum is wrong."""
    if not data.startswith(MAGIC):
        raise CheckpointError(f"{path} is not a synthaug checkpoint (bad header): delete it")
    start = len(MAGIC) + _HEADER.size
    if len(data) < start:
        raise CheckpointError(f"{path} is truncated inside its header: delete it")
    digest, length = _HEADER.unpack(data[len(MAGIC) : start])
    payload = data[start:]
    if len(payload) != length:
        raise CheckpointError(f"{path} is truncated ({len(payload)} of {length} payload bytes): delete it")
    if hashlib.sha256(payload).digest() != digest:
        raise CheckpointError(f"{path} fails its SHA-256 check (corrupted on disk): delete it")
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} passed its checksum but torch.load failed ({exc}): delete it") from exc


def save_checkpoint(root: Path, version: str, step: int, state: Mapping[str, Any], keep: int = 3) -> Path:
    """Write the checkpoint of `version` at `step` atomically, then delete all but the newest `keep` of that version."""
    if keep < 1:
        raise InvalidInput(f"keep must be at least 1, got {keep}")
    path = checkpoint_path(root, version, step)
    atomic_write_bytes(path, encode({**state, "version": version, "step": step}))
    for old in list_checkpoints(root, version)[:-keep]:
        old.unlink(missing_ok=True)
    _remove_orphaned_temporaries(path.parent)
    return path


def _remove_orphaned_temporaries(directory: Path) -> None:
    """Delete half-written checkpoint files whose writer process is gone (a kill -9 during a save leaves one)."""
    for tmp in directory.iterdir():
        match = _TEMPORARY.match(tmp.name)
        if match and not process_alive(int(match.group(1))):
            tmp.unlink(missing_ok=True)


def list_checkpoints(root: Path, version: str) -> list[Path]:
    """Checkpoint files of `version`, oldest step first (temporary files excluded)."""
    directory = Path(root) / version
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _NAME.match(p.name))


def load_latest(root: Path, version: str) -> Checkpoint | None:
    """The newest checkpoint of `version` that passes its checks, or None; newer invalid files go to `skipped`."""
    skipped: list[tuple[Path, str]] = []
    for path in reversed(list_checkpoints(root, version)):
        try:
            state = decode(path.read_bytes(), path)
        except (CheckpointError, OSError) as exc:
            skipped.append((path, str(exc)))
            continue
        return Checkpoint(path=path, version=version, step=int(state["step"]), state=state, skipped=skipped)
    return None


def load_file(path: Path) -> Checkpoint:
    """Load one checkpoint file; raises CheckpointError naming the file when it is invalid."""
    path = Path(path)
    state = decode(path.read_bytes(), path)
    return Checkpoint(path=path, version=str(state["version"]), step=int(state["step"]), state=state)


def latest_version(root: Path) -> str | None:
    """The version whose newest checkpoint file was written last, or None when `root` holds none."""
    root = Path(root)
    if not root.is_dir():
        return None
    newest: tuple[float, str] | None = None
    for directory in root.iterdir():
        files = list_checkpoints(root, directory.name) if directory.is_dir() else []
        if files:
            mtime = files[-1].stat().st_mtime
            if newest is None or mtime > newest[0]:
                newest = (mtime, directory.name)
    return newest[1] if newest else None
