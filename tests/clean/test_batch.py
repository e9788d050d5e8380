"""clean_batch end to end on real landed batches ingested into a temporary data root: cross-batch duplicates point
at the earlier batch, results never depend on the order batches are cleaned in, and features are cached."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

import synthaug.clean.batch
from synthaug.clean.batch import CLEAN_COLUMNS, MissingUpstream, clean_batch
from synthaug.clean.decision import CleanRules
from synthaug.clean.dedup import MATCHES
from synthaug.clean.features import perceptual_hash
from synthaug.core.layout import DataLayout
from synthaug.core.packs import read_object
from synthaug.ingest.batch import IngestOptions, ingest_batch
from synthaug.ingest.imageio import decode_image
from tests.images import photo

# Fixed example thresholds, independent of the measured defaults (which a benchmark may retune).
RULES = CleanRules(blur_threshold=0.3, hash_threshold=10, verify_min_correlation=0.97)
ARRIVAL = ["b1", "b2", "b3"]


def put(batch: Path, rel: str, pixels: np.ndarray, **save) -> Path:
    path = batch / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **save)
    return path


def copy(batch: Path, rel: str, source: Path) -> None:
    (batch / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, batch / rel)


def ingest(landing: Path, layout: DataLayout, *batches: str) -> None:
    for b in batches:
        ingest_batch(landing / b, layout, landing, IngestOptions(workers=1))


def clean(layout: DataLayout, batch: str, arrival: list[str] = ARRIVAL, rules: CleanRules = RULES):
    return clean_batch(layout, arrival, batch, rules, workers=1)


def manifest(layout: DataLayout, batch: str) -> pd.DataFrame:
    return pq.read_table(layout.clean_manifest(batch)).to_pandas().set_index("source_path")


def manifest_bytes(layout: DataLayout, batches: list[str] = ARRIVAL) -> dict[str, bytes]:
    return {b: layout.clean_manifest(b).read_bytes() for b in batches}


def decisions(layout: DataLayout, batches: list[str] = ARRIVAL) -> dict[str, tuple]:
    """source_path → (status, reason, source_path of duplicate_of) over every cleaned batch."""
    frames = [manifest(layout, b) for b in batches]
    path_of = {row.image_id: path for f in frames for path, row in f.iterrows()}
    return {
        path: (row.status, row.reason if isinstance(row.reason, str) else None, path_of.get(row.duplicate_of))
        for f in frames
        for path, row in f.iterrows()
    }


@pytest.fixture
def three_batches(landing: Path, make_batch) -> Path:
    """b2 and b3 repeat images of b1 (byte copies, a re-saved PNG, JPEG q75, brighter), and b3 also of b2."""
    b1 = make_batch("b1")
    b2 = make_batch("b2", offset=3)
    b3 = make_batch("b3", offset=6)
    put(b1, "photos/p1.png", photo(1))
    put(b1, "photos/p2.png", photo(2))
    (b1 / "photos/truncated.png").write_bytes((b1 / "photos/p1.png").read_bytes()[:300])

    copy(b2, "photos/p1-copy.png", b1 / "photos/p1.png")
    put(b2, "photos/p2-q75.jpg", photo(2), quality=75)
    put(b2, "photos/p3.png", photo(3))
    item = cv2.imread(str(b1 / "T-shirt_top/img-000.png"), cv2.IMREAD_UNCHANGED)
    put(b2, "extra/resaved.png", item, compress_level=1)
    assert (b2 / "extra/resaved.png").read_bytes() != (b1 / "T-shirt_top/img-000.png").read_bytes()

    copy(b3, "photos/p1-again.png", b1 / "photos/p1.png")
    put(b3, "photos/p2-brighter.png", np.clip(photo(2).astype(np.int16) + 12, 0, 255).astype(np.uint8))
    put(b3, "photos/p3-0.8x.png", cv2.resize(photo(3), None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA))
    copy(b3, "photos/p3-copy.png", b2 / "photos/p3.png")
    put(b3, "photos/p4.png", photo(4))
    return landing


EXPECTED_DUPLICATES = {
    "b2/photos/p1-copy.png": ("removed", "exact_duplicate", "b1/photos/p1.png"),
    "b2/photos/p2-q75.jpg": ("removed", "near_duplicate", "b1/photos/p2.png"),
    "b2/extra/resaved.png": ("removed", "exact_duplicate", "b1/T-shirt_top/img-000.png"),
    "b3/photos/p1-again.png": ("removed", "exact_duplicate", "b1/photos/p1.png"),
    "b3/photos/p2-brighter.png": ("removed", "near_duplicate", "b1/photos/p2.png"),
    "b3/photos/p3-0.8x.png": ("removed", "near_duplicate", "b2/photos/p3.png"),
    "b3/photos/p3-copy.png": ("removed", "exact_duplicate", "b2/photos/p3.png"),
}


def test_copies_in_later_batches_point_at_the_earlier_batch(three_batches, layout):
    ingest(three_batches, layout, *ARRIVAL)
    summaries = [clean(layout, b) for b in ARRIVAL]
    got = decisions(layout)
    assert {p: d for p, d in got.items() if d[0] == "removed"} == {
        "b1/photos/truncated.png": ("removed", "corrupt", None),
        **EXPECTED_DUPLICATES,
    }
    assert len(got) == 12 + 13 + 14
    kept = {p for p, d in got.items() if d[0] == "kept"}
    assert {"b1/photos/p1.png", "b1/photos/p2.png", "b2/photos/p3.png", "b3/photos/p4.png"} <= kept
    assert all(d[2] in kept for d in EXPECTED_DUPLICATES.values())  # duplicate_of is always a kept image

    assert [(s.batch_id, s.total, s.kept) for s in summaries] == [("b1", 12, 11), ("b2", 13, 10), ("b3", 14, 10)]
    assert summaries[2].reasons == Counter(exact_duplicate=2, near_duplicate=2)
    assert summaries[2].blur_cutoff == 0.3
    assert summaries[2].manifest_path == layout.clean_manifest("b3")


def test_the_decisions_say_when_they_start_and_how_long_they_took(three_batches, layout):
    ingest(three_batches, layout, *ARRIVAL)
    notes = []
    clean_batch(layout, ARRIVAL, "b3", RULES, workers=1, note=notes.append)
    assert notes[0] == "deciding 14 images of b3 against 25 earlier ones"
    assert notes[1].startswith("decisions for b3 took ") and notes[1].endswith(" s")


def test_manifest_has_one_row_per_raw_file_with_scores(three_batches, layout):
    ingest(three_batches, layout, "b1", "b2")
    clean(layout, "b2")
    table = pq.read_table(layout.clean_manifest("b2"))
    assert table.column_names == CLEAN_COLUMNS
    raw = pq.read_table(layout.raw_manifest("b2")).to_pandas()
    m = table.to_pandas()
    assert m["image_id"].tolist() == raw["image_id"].tolist()
    assert (m["batch_id"] == "b2").all()
    row = m.set_index("source_path").loc["b2/photos/p2-q75.jpg"]
    assert row["width"] == row["height"] == row["min_side"] == 192
    assert row["channels"] == 3
    assert row["hash_distance"] <= RULES.hash_threshold
    assert row["cluster_size"] == 2
    assert row["sharpness"] > 0.3 and row["std"] > 2 and row["entropy"] > 1 and row["detail"] > 2


def test_cleaning_order_does_not_change_any_manifest_byte(three_batches, layout, tmp_path):
    ingest(three_batches, layout, *ARRIVAL)
    other = DataLayout(tmp_path / "data-other")
    shutil.copytree(layout.root / "raw", other.root / "raw")

    for b in ["b1", "b2", "b3"]:
        clean(layout, b)
    for b in ["b3", "b1", "b2"]:
        clean(other, b)
    in_order = manifest_bytes(layout)
    assert manifest_bytes(other) == in_order

    for b in ["b2", "b3", "b1"]:  # re-running everything, now from cached features, changes nothing
        clean(layout, b)
    for b in ARRIVAL:
        clean(other, b)
    assert manifest_bytes(layout) == in_order
    assert manifest_bytes(other) == in_order


def test_a_later_batch_never_changes_an_earlier_batch(three_batches, layout):
    ingest(three_batches, layout, "b1")
    clean(layout, "b1")  # later batches are registered but not even ingested yet
    first = layout.clean_manifest("b1").read_bytes()

    ingest(three_batches, layout, "b2", "b3")
    clean(layout, "b2")
    clean(layout, "b3")
    second = layout.clean_manifest("b2").read_bytes()
    assert layout.clean_manifest("b1").read_bytes() == first
    clean(layout, "b1")
    assert layout.clean_manifest("b1").read_bytes() == first

    # b3 changes completely (new content re-ingested): b1 and b2 are decided exactly as before
    shutil.rmtree(three_batches / "b3")
    put(three_batches / "b3", "photos/p1-yet-again.png", photo(1))
    ingest(three_batches, layout, "b3")
    clean(layout, "b1")
    clean(layout, "b2")
    clean(layout, "b3")
    assert layout.clean_manifest("b1").read_bytes() == first
    assert layout.clean_manifest("b2").read_bytes() == second
    assert decisions(layout, ["b1", "b3"])["b3/photos/p1-yet-again.png"][2] == "b1/photos/p1.png"


def test_missing_raw_manifest_of_an_earlier_batch_says_which_and_what_to_do(three_batches, layout):
    ingest(three_batches, layout, "b2")
    with pytest.raises(MissingUpstream) as err:
        clean(layout, "b2", arrival=["b1", "b2"])
    message = str(err.value)
    assert "batch b1" in message
    assert str(layout.raw_manifest("b1")) in message
    assert "materialize raw_images" in message and "rerun clean_images" in message
    assert not layout.clean_manifest("b2").exists()


def test_batch_outside_the_arrival_order_is_refused(three_batches, layout):
    ingest(three_batches, layout, "b1")
    with pytest.raises(ValueError, match="b9"):
        clean(layout, "b9")


def test_one_image_repeated_fifty_times_keeps_exactly_one(landing, layout):
    batch = landing / "repeats"
    first = put(batch, "img-00.png", photo(30, 128))
    for k in range(1, 50):
        copy(batch, f"img-{k:02d}.png", first)
    ingest(landing, layout, "repeats")
    summary = clean(layout, "repeats", arrival=["repeats"])
    m = manifest(layout, "repeats")
    assert (summary.total, summary.kept) == (50, 1)
    assert summary.reasons == Counter(exact_duplicate=49)
    keeper = m.loc[m["status"] == "kept", "image_id"].item()
    assert keeper == m["image_id"].min()  # identical copies: the smallest image id stays
    assert (m.loc[m["status"] == "removed", "duplicate_of"] == keeper).all()
    assert (m["cluster_size"] == 50).all()


def test_grey_rgb_and_rgba_images_mix_in_one_batch(landing, layout, fashion_train):
    images, _ = fashion_train
    batch = landing / "mixed"
    put(batch, "grey-item.png", images[100])
    put(batch, "grey-photo.png", cv2.cvtColor(photo(40), cv2.COLOR_RGB2GRAY))
    rgba = np.dstack([photo(41), np.tile(np.linspace(60, 255, 192).astype(np.uint8), (192, 1))])
    put(batch, "translucent.png", rgba)
    put(batch, "opaque-rgb.png", photo(42))
    put(batch, "opaque-rgba.png", np.dstack([photo(42), np.full((192, 192), 255, np.uint8)]))
    ingest(landing, layout, "mixed")
    clean(layout, "mixed", arrival=["mixed"])
    m = manifest(layout, "mixed")
    assert m["channels"].to_dict() == {
        "mixed/grey-item.png": 1,
        "mixed/grey-photo.png": 1,
        "mixed/opaque-rgb.png": 3,
        "mixed/opaque-rgba.png": 3,
        "mixed/translucent.png": 3,
    }
    removed = m[m["status"] == "removed"]
    assert len(removed) == 1  # the fully opaque RGBA decodes to exactly the RGB image's pixels
    assert removed["reason"].item() == "exact_duplicate"
    pair = {"mixed/opaque-rgb.png", "mixed/opaque-rgba.png"}
    assert removed.index[0] in pair
    assert m.set_index("image_id").loc[removed["duplicate_of"].item(), "status"] == "kept"


def test_batch_where_everything_is_removed_gives_a_valid_manifest(landing, layout):
    batch = landing / "tiny"
    for k in range(5):
        put(batch, f"thumb-{k}.png", photo(50 + k, 12))
    ingest(landing, layout, "tiny")
    summary = clean(layout, "tiny", arrival=["tiny"])
    assert (summary.total, summary.kept) == (5, 0)
    assert summary.reasons == Counter(too_small=5)
    assert summary.max_cluster_diameter == 0
    table = pq.read_table(layout.clean_manifest("tiny"))
    assert table.column_names == CLEAN_COLUMNS
    m = table.to_pandas()
    assert (m["status"] == "removed").all() and (m["min_side"] == 12).all()
    assert m["duplicate_of"].isna().all() and m["cluster_size"].isna().all()


def test_error_rows_and_undecodable_stored_bytes_are_corrupt(landing, layout):
    batch = landing / "broken"
    good = put(batch, "good.png", photo(60))
    put(batch, "damaged-later.png", photo(61))
    (batch / "truncated.png").write_bytes(good.read_bytes()[:500])
    ingest(landing, layout, "broken")
    raw = pq.read_table(layout.raw_manifest("broken")).to_pandas().set_index("source_path")
    assert raw.loc["broken/truncated.png", "status"] == "error"
    # the stored copy of an ingested image becomes unreadable (e.g. disk damage) before cleaning
    row = raw.loc["broken/damaged-later.png"]
    with open(layout.root / row["stored_path"], "r+b") as fh:
        fh.seek(int(row["stored_offset"]))
        fh.write(b"\x00" * 64)

    clean(layout, "broken", arrival=["broken"])
    m = manifest(layout, "broken")
    assert {path: (row.status, row.reason) for path, row in m.iterrows() if path != "broken/good.png"} == {
        "broken/damaged-later.png": ("removed", "corrupt"),
        "broken/truncated.png": ("removed", "corrupt"),
    }
    assert m.loc["broken/good.png", "status"] == "kept"
    assert m.loc[["broken/damaged-later.png", "broken/truncated.png"], "sharpness"].isna().all()


def test_manifest_phash_keeps_all_64_bits_next_to_a_corrupt_file_also_from_the_cache(landing, layout):
    batch = landing / "hashes"
    for s in range(5):
        put(batch, f"photo{s}.png", photo(70 + s, 128))
    (batch / "not-an-image.png").write_bytes(b"hello")
    ingest(landing, layout, "hashes")
    clean(layout, "hashes", arrival=["hashes"])  # features computed
    fresh = layout.clean_manifest("hashes").read_bytes()
    clean(layout, "hashes", arrival=["hashes"])  # features read back from the cache
    m = manifest(layout, "hashes")
    for s in range(5):
        row = m.loc[f"hashes/photo{s}.png"]
        pixels = decode_image(read_object(layout.root, row["stored_path"], row["stored_offset"], row["file_size"]))
        assert row["phash"] == f"{perceptual_hash(pixels.pixels):016x}"
    assert layout.clean_manifest("hashes").read_bytes() == fresh


def test_features_are_cached_and_reused(three_batches, layout, monkeypatch):
    ingest(three_batches, layout, "b1")
    clean(layout, "b1")
    first = layout.clean_manifest("b1").read_bytes()
    cache = layout.features_path("b1", "phash-w64-v3")
    assert cache.is_file()

    def must_not_run(*args, **kwargs):
        raise AssertionError("features were recomputed although the raw manifest did not change")

    monkeypatch.setattr(synthaug.clean.batch, "features_frame", must_not_run)
    clean(layout, "b1")
    assert layout.clean_manifest("b1").read_bytes() == first
    clean(layout, "b1", rules=CleanRules(blur_threshold=50.0, hash_threshold=4))  # no feature setting changed
    with pytest.raises(AssertionError, match="recomputed"):
        clean(layout, "b1", rules=CleanRules(hash_algorithm="dhash"))  # another hash: another cache entry


def test_features_cache_is_invalidated_when_the_raw_manifest_changes(three_batches, layout, monkeypatch):
    ingest(three_batches, layout, "b1")
    clean(layout, "b1")
    calls = []
    real = synthaug.clean.batch.features_frame

    def counting(image_ids, *args, **kwargs):
        calls.append(len(image_ids))
        return real(image_ids, *args, **kwargs)

    monkeypatch.setattr(synthaug.clean.batch, "features_frame", counting)
    ingest(three_batches, layout, "b1")  # same content again: same raw version, cache still valid
    clean(layout, "b1")
    assert calls == []

    put(three_batches / "b1", "photos/p9.png", photo(9))
    ingest(three_batches, layout, "b1")
    summary = clean(layout, "b1")
    assert calls == [13]
    assert (summary.total, summary.kept) == (13, 12)
    assert manifest(layout, "b1").loc["b1/photos/p9.png", "status"] == "kept"
    clean(layout, "b1")
    assert calls == [13]


def test_a_crop_landing_in_a_later_batch_is_removed_as_a_crop_of_the_earlier_original(landing, layout, fashion_train):
    images, _ = fashion_train
    put(landing / "b1", "Coat/original.png", images[21])
    put(landing / "b1", "Coat/other.png", images[22])
    put(landing / "b2", "Coat/cropped.png", images[21][1:, 1:27])  # one row and one column cut off
    ingest(landing, layout, "b1", "b2")
    rules = CleanRules(blur_threshold=0.3)  # the default crop links
    clean(layout, "b1", arrival=["b1", "b2"], rules=rules)
    clean(layout, "b2", arrival=["b1", "b2"], rules=rules)
    b1, b2 = manifest(layout, "b1"), manifest(layout, "b2")
    assert (b1["status"] == "kept").all()
    row = b2.loc["b2/Coat/cropped.png"]
    assert (row["status"], row["reason"], row["duplicate_match"]) == ("removed", "near_duplicate", "crop+window")
    assert row["duplicate_of"] == b1.loc["b1/Coat/original.png", "image_id"]
    assert not row["cluster_chained"]


def test_every_duplicate_link_names_its_proposer_and_confirmer(three_batches, layout):
    """`duplicate_match` in the manifest: `exact` for identical pixels, proposer+confirmer for the others."""
    ingest(three_batches, layout, *ARRIVAL)
    for batch in ARRIVAL:
        clean(layout, batch)
    rows = pd.concat([manifest(layout, b) for b in ARRIVAL])
    dups = rows[rows["reason"].isin(["exact_duplicate", "near_duplicate"])]
    assert len(dups) == len(EXPECTED_DUPLICATES)
    assert (dups.loc[dups["reason"] == "exact_duplicate", "duplicate_match"] == "exact").all()
    assert set(dups.loc[dups["reason"] == "near_duplicate", "duplicate_match"]) <= set(MATCHES) - {"phash"}
    others = ~rows["reason"].isin(["exact_duplicate", "near_duplicate"])
    assert rows.loc[others, "duplicate_match"].isna().all()
