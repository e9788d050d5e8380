"""Fuzzing the per-file entry point (issue 18): tens of thousands of mutated files of every supported format,
the minimized files earlier campaigns found, and a whole hostile batch through Dagster. Every case gets a verdict
from the decoder's own error handling, within the time limit; no case reaches the catch-all or kills a worker."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from assets.clean_images import clean_images
from assets.partitions import BATCHES
from assets.raw_images import raw_images
from synthaug.core.supervised_pool import PoolLimits
from synthaug.ingest.file_check import DecodeSettings, check_bytes
from synthaug.ingest.imageio import DEFAULT_MAX_PIXELS
from tests.reliability.fuzz import ESCAPES, REGRESSIONS, cases, seed_corpus, verdicts
from tests.reliability.hostile_batch import Hostile, materialize_batch

FUZZ_CASES = 30_000
FUZZ_SEED = 20261204
TIME_LIMIT_S = 10.0


def test_the_seed_corpus_holds_a_valid_file_of_every_supported_format():
    corpus = seed_corpus()
    verdict = {name: check_bytes(data, name, DecodeSettings(DEFAULT_MAX_PIXELS)) for name, data in corpus.items()}
    assert {name: v.get("error_code") for name, v in verdict.items() if v.get("status") != "ok"} == {}
    formats = {v["format"] for v in verdict.values()}
    assert formats >= {"PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "ICO", "PPM", "TGA", "SGI", "PCX", "DDS"}
    assert len(formats) >= 18


def test_thirty_thousand_mutated_files_each_get_a_verdict_within_the_time_limit():
    start = time.monotonic()
    results = list(verdicts(cases(FUZZ_CASES, FUZZ_SEED), workers=2, limits=PoolLimits(TIME_LIMIT_S)))
    took = time.monotonic() - start
    codes = Counter(code for _, _, code, _ in results)
    print(f"{len(results):,} fuzz cases in {took:.1f} s: {dict(codes.most_common())}")
    assert len(results) == FUZZ_CASES
    escapes = [(name, code, error) for name, _, code, error in results if code in ESCAPES]
    assert escapes == [], "minimize each with `python -m tests.reliability.fuzz --save` and fix the decoder"
    assert codes["ok"] > FUZZ_CASES // 10 and codes["corrupt_data"] > FUZZ_CASES // 10, "the mutations are too mild"


@pytest.mark.parametrize("path", sorted(REGRESSIONS.iterdir()), ids=lambda p: p.name)
def test_each_file_an_earlier_campaign_found_gets_a_clear_reason(path: Path):
    """Each of these made the decoder raise outside its error handling (TypeError, SyntaxError, struct.error,
    IndexError, KeyError, ValueError) and so failed its whole batch."""
    verdict = check_bytes(path.read_bytes(), path.name, DecodeSettings(DEFAULT_MAX_PIXELS))
    assert verdict["error_code"] in {"corrupt_data", "unreadable", "empty_image"}, verdict
    assert verdict.get("error_type") is None and verdict["error"]


def _removed_share_check(instance, hostile: Hostile):
    result = materialize_batch(clean_images, instance, hostile)
    return {e.check_name: e for e in result.get_asset_check_evaluations()}["removed_share_within_limit"]


def test_a_batch_of_fuzz_cases_and_hostile_files_ingests_with_one_row_per_file(hostile: Hostile, instance):
    """The fuzz corpus, the regression files and issue 8's hostile batch (escaping links, bombs, broken files) in
    one batch: the raw_images run succeeds with a row per file; cleaning removes what is not an image and its
    blocking check says how much that was."""
    folder = hostile.batch / "fuzz"
    folder.mkdir()
    for name, data in cases(2_000, FUZZ_SEED + 1):
        (folder / name).write_bytes(data)
    for path in REGRESSIONS.iterdir():
        shutil.copy(path, folder / path.name)
    expected = len(hostile.expected) + 2_000 + len(list(REGRESSIONS.iterdir()))
    instance.add_dynamic_partitions(BATCHES, ["evil"])

    assert materialize_batch(raw_images, instance, hostile).success
    rows = pq.read_table(hostile.data_root / "raw" / "evil" / "manifest.parquet").to_pylist()
    assert len(rows) == expected and len({r["source_path"] for r in rows}) == expected
    assert not [r for r in rows if r["error_code"] in ESCAPES]

    check = _removed_share_check(instance, hostile)
    clean = pq.read_table(hostile.data_root / "clean" / "evil" / "manifest.parquet").to_pylist()
    removed = sum(r["status"] == "removed" for r in clean)
    assert len(clean) == expected and check.description == f"{removed} of {expected} images removed"
    assert check.passed == (removed / expected <= 0.5)


def test_a_batch_where_every_file_is_hostile_ingests_and_its_check_says_all_were_removed(hostile: Hostile, instance):
    good = ["cat/good.png", "--help/img.png", "-rf/img.png", "cat/new\nline.png", "cat/esc\x1b[31m.png"]
    assert len(good) == sum(status == "ok" for status, _, _ in hostile.expected.values())
    for name in good:
        (hostile.batch / name).unlink()
    for path in REGRESSIONS.iterdir():
        shutil.copy(path, hostile.batch / "cat" / path.name)
    instance.add_dynamic_partitions(BATCHES, ["evil"])

    assert materialize_batch(raw_images, instance, hostile).success
    rows = pq.read_table(hostile.data_root / "raw" / "evil" / "manifest.parquet").to_pylist()
    total = len(hostile.expected) - len(good) + len(list(REGRESSIONS.iterdir()))
    assert len(rows) == total and all(r["status"] == "error" for r in rows)

    check = _removed_share_check(instance, hostile)
    assert not check.passed and check.description == f"{total} of {total} images removed"
