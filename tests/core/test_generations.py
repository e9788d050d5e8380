"""The generation store both tensors and the synthetic set publish through: a draft becomes a `g-*` folder only when
complete, `current.json` names it only once published, stale and partial generations go, and a failure at any
step leaves the published generation as it was."""

from __future__ import annotations

import json
import re

import pytest

from synthaug.core.generations import GenerationStore, new_generation_name


def names(store: GenerationStore) -> list[str]:
    return sorted(p.name for p in store.root.iterdir())


def publish_one(store: GenerationStore, content: str) -> str:
    """Write and publish one generation holding `data.txt`; return its name."""
    with store.draft() as draft:
        (draft.folder / "data.txt").write_text(content)
        assert draft.folder.name == f".{draft.name}.partial" and not store.path(draft.name).exists()
    store.publish(draft.name, content)
    return draft.name


def test_names_sort_by_time_and_never_collide():
    assert re.fullmatch(r"g-\d{8}T\d{6}-[0-9a-f]{8}", new_generation_name())
    assert len({new_generation_name() for _ in range(100)}) == 100


def test_publish_points_at_the_new_generation_and_removes_the_old_one(tmp_path):
    store = GenerationStore(tmp_path / "out")
    assert store.current() is None
    first = publish_one(store, "one")
    assert store.current() == (first, "one")
    assert json.loads(store.pointer.read_text()) == {"generation": first, "data_version": "one"}
    second = publish_one(store, "two")
    assert names(store) == sorted(["current.json", second])
    assert (store.path(second) / "data.txt").read_text() == "two"


def test_keep_replaced_keeps_the_previous_generation_for_one_more_run(tmp_path):
    store = GenerationStore(tmp_path / "out", keep_replaced=True)
    first = publish_one(store, "one")
    second = publish_one(store, "two")
    assert names(store) == sorted(["current.json", first, second])
    third = publish_one(store, "three")
    assert names(store) == sorted(["current.json", second, third])


def test_a_failed_draft_or_pointer_switch_leaves_the_published_generation(tmp_path, monkeypatch):
    store = GenerationStore(tmp_path / "out")
    first = publish_one(store, "one")
    with pytest.raises(RuntimeError, match="midway"), store.draft() as draft:
        (draft.folder / "data.txt").write_text("half")
        raise RuntimeError("midway")
    assert names(store) == sorted(["current.json", first])

    def crash(*args, **kwargs) -> None:
        raise OSError("disk vanished")

    with store.draft() as draft:
        (draft.folder / "data.txt").write_text("two")
    monkeypatch.setattr(GenerationStore, "switch_pointer", crash)
    with pytest.raises(OSError, match="disk vanished"):
        store.publish(draft.name, "two")
    assert store.current() == (first, "one") and names(store) == sorted(["current.json", first])


def test_leftovers_of_killed_runs_go_with_the_next_draft_and_other_files_stay(tmp_path):
    store = GenerationStore(tmp_path / "out")
    first = publish_one(store, "one")
    for leftover in (".g-20000101T000000-deadbeef.partial", "g-20000101T000000-0badcafe"):
        (store.root / leftover).mkdir()
    (store.root / "notes").mkdir()
    with store.draft() as draft:
        assert names(store) == sorted(["current.json", draft.folder.name, first, "notes"])
