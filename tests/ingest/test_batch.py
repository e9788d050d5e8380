"""ingest_batch: one manifest row per landed file (bad ones included, with the reason), the bytes
of the good ones appended in manifest order to one immutable pack named by its own SHA-256, and nothing in
the landing folder touched."""

from __future__ import annotations

import builtins
import os
import re
import signal
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest

from synthaug.core.hashing import stable_id
from synthaug.core.layout import DataLayout
from synthaug.ingest.batch import IngestSummary, ingest_batch
from synthaug.ingest.samples import examples_by_group
from tests.ingest.helpers import (
    SEQUENTIAL,
    data_files,
    packs,
    rows_by_source,
    sha256,
    stored_object,
    temp_leftovers,
    xxh3_pixels,
)

# Every file of the hostile batch (see conftest.write_hostile_batch) and why it is there.
HOSTILE_FILES = [
    "cat/gradient.png",  # a plain good PNG
    "cat/photo.jpg",  # a plain good JPEG
    "cat/empty.png",  # zero bytes
    "cat/truncated.png",  # cut in half
    "cat/truncated.jpg",  # cut in half
    "cat/flipped.jpg",  # 20 entropy-coded bytes inverted
    "dog/readme.png",  # a text file with an image extension
    "dog/bomb.png",  # header claims 50,000 x 50,000 pixels
    "dog/deep16.png",  # 16-bit grey
    "dog/palette.png",  # palette with transparency
    "dog/cmyk.jpg",  # CMYK JPEG
    "dog/rotated.jpg",  # EXIF orientation 6
    "dog/animated.gif",  # three frames
    "dog/escape.png",  # symlink to a file outside the landing folder
    "dog/pipe.png",  # a FIFO
    "chat noir ü/photo été 猫 01.png",  # spaces and non-ASCII in folder and file names
    "loose file.png",  # directly under the batch: unlabeled
]


class Matcher(str):
    """A string that compares equal to every string its `matches` accepts (shown as its description)."""

    def matches(self, other: str) -> bool:
        raise NotImplementedError

    def __eq__(self, other):
        return isinstance(other, str) and self.matches(other)

    def __ne__(self, other):
        return not self == other

    __hash__ = str.__hash__


class Contains(Matcher):
    """Equal to any string that contains every given part (for error messages that embed details)."""

    def __new__(cls, *parts: str):
        obj = super().__new__(cls, " ... ".join(parts))
        obj.parts = parts
        return obj

    def matches(self, other: str) -> bool:
        return all(p in other for p in self.parts)


class Hex(Matcher):
    """Equal to any lowercase hex string of the given length."""

    def __new__(cls, length: int):
        obj = super().__new__(cls, f"<{length} hex chars>")
        obj.length = length
        return obj

    def matches(self, other: str) -> bool:
        return len(other) == self.length and all(c in "0123456789abcdef" for c in other)


class PackPath(Matcher):
    """Equal to the data-root-relative path of any pack of the batch: `raw/<batch>/pack-<16 hex>.bin`."""

    def __new__(cls, batch_id: str):
        obj = super().__new__(cls, f"raw/{batch_id}/pack-<16 hex chars>.bin")
        obj.pattern = re.compile(rf"raw/{re.escape(batch_id)}/pack-[0-9a-f]{{16}}\.bin")
        return obj

    def matches(self, other: str) -> bool:
        return self.pattern.fullmatch(other) is not None


class Offset:
    """Equal to any non-negative int (the exact offsets are checked against the pack itself)."""

    def __eq__(self, other):
        return isinstance(other, int) and not isinstance(other, bool) and other >= 0

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return "<offset >= 0>"

    __hash__ = None


def expected_row(batch_id: str, rel: str, e) -> dict:
    """The full manifest row a file must get, from what the fixture wrote (an independent oracle)."""
    read = e.data is not None
    row = {
        "image_id": stable_id(batch_id, rel),
        "batch_id": batch_id,
        "source_path": f"{batch_id}/{rel}",
        "label": e.label,
        "label_source": e.label_source,
        "format": None,
        "width": None,
        "height": None,
        "channels": None,
        "file_size": len(e.data) if read else None,
        "file_hash": sha256(e.data) if read else None,
        "pixel_hash": None,
        "stored_path": None,
        "stored_offset": None,
        "status": e.status,
        "error_code": e.error_code,
        "error": Contains(*e.error_has) if e.status != "ok" else None,
        "error_type": None,
        "notes": e.notes,
    }
    if e.status == "ok":
        width, height, channels = e.size
        row.update(
            format=e.format,
            width=width,
            height=height,
            channels=channels,
            pixel_hash=xxh3_pixels(e.pixels) if e.pixels is not None else Hex(32),
            stored_path=PackPath(batch_id),
            stored_offset=Offset(),
        )
    return row


@dataclass
class Ingested:
    hb: object
    layout: DataLayout
    summary: IngestSummary
    rows: dict[str, dict]
    landing_before: dict
    landing_after: dict
    outside_before: dict
    outside_after: dict
    opened: list[str]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, hostile_batch_writer, tree_snapshot) -> Ingested:
    """The hostile batch, ingested once sequentially while recording every path opened."""
    root = tmp_path_factory.mktemp("hostile")
    landing = root / "landing"
    landing.mkdir()
    hb = hostile_batch_writer(landing)
    layout = DataLayout(root / "data")
    landing_before, outside_before = tree_snapshot(landing), tree_snapshot(hb.outside_target.parent)
    opened: list[str] = []
    real_os_open, real_open = os.open, builtins.open

    def spy_os_open(path, *args, **kwargs):
        opened.append(os.fsdecode(path))
        return real_os_open(path, *args, **kwargs)

    def spy_open(file, *args, **kwargs):
        if isinstance(file, str | bytes | os.PathLike):
            opened.append(os.fsdecode(file))
        return real_open(file, *args, **kwargs)

    def on_alarm(signum, frame):
        raise TimeoutError("ingest blocked (on the FIFO?)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(30)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "open", spy_os_open)
            mp.setattr(builtins, "open", spy_open)
            summary = ingest_batch(hb.path, layout, landing, SEQUENTIAL)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return Ingested(
        hb,
        layout,
        summary,
        rows_by_source(summary.manifest_path),
        landing_before,
        tree_snapshot(landing),
        outside_before,
        tree_snapshot(hb.outside_target.parent),
        opened,
    )


def test_hostile_batch_fixture_matches_this_list(hostile):
    assert sorted(hostile.hb.expected) == sorted(HOSTILE_FILES)


def test_every_landed_file_gets_exactly_one_row_and_markers_get_none(hostile):
    assert hostile.summary.manifest_path == hostile.layout.raw_manifest("hostile-001")
    assert sorted(hostile.rows) == sorted(f"hostile-001/{rel}" for rel in HOSTILE_FILES)
    assert hostile.summary.total == len(HOSTILE_FILES)


@pytest.mark.parametrize("rel", HOSTILE_FILES)
def test_manifest_row_says_exactly_what_happened_to_each_file(hostile, rel):
    """Status, reason code, error text, notes, size and hashes of each row, compared as a whole."""
    row = hostile.rows[f"hostile-001/{rel}"]
    assert row == expected_row("hostile-001", rel, hostile.hb.expected[rel])


def test_summary_counts_what_a_person_asks_for_first(hostile):
    s = hostile.summary
    assert s.ok == 9
    assert s.errors == Counter(
        {"corrupt_data": 3, "refused": 2, "empty_file": 1, "not_an_image": 1, "too_many_pixels": 1}
    )
    assert s.labels == Counter({"cat": 2, "dog": 5, "chat noir ü": 1, "(unlabeled)": 1})
    assert s.formats == Counter({"PNG": 5, "JPEG": 3, "GIF": 1})
    assert s.noted == 5
    assert s.warnings == []
    assert s.seconds > 0


def test_no_good_file_is_lost_among_bad_ones(hostile):
    ok = {r["source_path"] for r in hostile.rows.values() if r["status"] == "ok"}
    assert ok == {f"hostile-001/{rel}" for rel in hostile.hb.good}
    assert len(ok) == 9


def test_good_files_are_stored_in_one_pack_named_by_its_own_sha256(hostile):
    """Every good file's bytes, and nothing else, in one pack, in manifest order, verifiable by file_hash."""
    layout, batch_id = hostile.layout, "hostile-001"
    (name, pack), *others = packs(layout, batch_id).items()
    assert others == [], "one pack per batch"
    assert name == f"pack-{sha256(pack)[:16]}.bin", "the pack is named by the SHA-256 of its bytes"
    good = [r for r in hostile.rows.values() if r["status"] == "ok"]
    assert len(good) == 9
    end = 0
    for row in good:  # manifest order
        assert row["stored_path"] == f"raw/{batch_id}/{name}"
        assert row["stored_offset"] == end, "objects are appended back to back in manifest order"
        data = stored_object(layout, row)
        assert sha256(data) == row["file_hash"]
        assert data == (hostile.hb.path / row["source_path"].split("/", 1)[1]).read_bytes()
        end += row["file_size"]
    assert end == len(pack), "only good files are stored, each once"
    bad = [r for r in hostile.rows.values() if r["status"] != "ok"]
    assert all(r["stored_path"] is None and r["stored_offset"] is None for r in bad)
    assert sorted(data_files(layout)) == [f"raw/{batch_id}/manifest.parquet", f"raw/{batch_id}/{name}"]


def test_landing_folder_is_left_untouched(hostile):
    """Same entries, same bytes, same mtimes: ingest only ever reads the landing folder."""
    assert hostile.landing_after == hostile.landing_before
    assert hostile.outside_after == hostile.outside_before


def test_symlink_target_outside_landing_is_never_opened_or_copied(hostile):
    good = os.path.realpath(hostile.hb.path / "cat" / "gradient.png")
    assert good in hostile.opened, "the spy sees the files ingest reads"
    secret = hostile.hb.outside_target
    secret_paths = {str(secret), os.path.realpath(secret)}
    assert not secret_paths & set(hostile.opened)
    escape = hostile.hb.path / "dog" / "escape.png"
    assert str(escape) not in hostile.opened
    secret_bytes = secret.read_bytes()
    assert all(secret_bytes not in data for data in data_files(hostile.layout).values())
    assert all(r["file_hash"] != sha256(secret_bytes) for r in hostile.rows.values())


def test_ingest_leaves_no_temporary_files(hostile):
    assert temp_leftovers(hostile.layout.root) == []


def test_examples_by_group_decodes_stored_copies_per_label(hostile):
    groups = examples_by_group(hostile.layout, hostile.summary.manifest_path, "label", per_group=2)
    assert sorted(groups) == ["(none)", "cat", "chat noir ü", "dog"]
    assert [len(v) for k, v in sorted(groups.items())] == [1, 2, 1, 2]
    np.testing.assert_array_equal(groups["(none)"][0], hostile.hb.expected["loose file.png"].pixels)
    by_status = examples_by_group(hostile.layout, hostile.summary.manifest_path, "status", 100, where_status=None)
    assert list(by_status) == ["ok"], "failed files have no stored copy to show"
    assert len(by_status["ok"]) == 9
