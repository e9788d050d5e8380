"""The cleaning rules on real image files: each rule fires with its reason and the scores behind it, rules
apply in order, duplicates keep the best copy, and CleanRules rejects invalid thresholds by name."""

from __future__ import annotations

import io
import math
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from threadpoolctl import threadpool_info, threadpool_limits

from synthaug.clean.decision import REASONS, CleanRules, clean_paths, decide, features_frame
from synthaug.clean.features import perceptual_hash
from synthaug.clean.quality import quality_scores
from synthaug.ingest.imageio import read_image
from tests.images import photo


def brighter(pixels: np.ndarray, by: int = 12) -> np.ndarray:
    return np.clip(pixels.astype(np.int16) + by, 0, 255).astype(np.uint8)


def shrunk(pixels: np.ndarray, factor: float = 0.8) -> np.ndarray:
    return cv2.resize(pixels, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)


def save_png(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path, "PNG")
    return path


def save_jpeg(path: Path, pixels: np.ndarray, quality: int = 75) -> Path:
    Image.fromarray(pixels).save(path, "JPEG", quality=quality)
    return path


# The examples use fixed thresholds, independent of the measured defaults (which a benchmark may retune).
EXAMPLE_RULES = {"blur_threshold": 0.3, "hash_threshold": 10, "verify_min_correlation": 0.97}


def run(paths: list[Path], **rules) -> pd.DataFrame:
    """clean_paths under EXAMPLE_RULES (overridden by `rules`), indexed by file name."""
    result = clean_paths(paths, CleanRules(**{**EXAMPLE_RULES, **rules}), workers=1)
    result.index = [Path(p).name for p in result["path"]]
    names = [Path(p).name if isinstance(p, str) else None for p in result["duplicate_of"]]
    result["duplicate_of"] = pd.Series(names, index=result.index, dtype=object)
    result["reason"] = pd.Series(
        [r if isinstance(r, str) else None for r in result["reason"]], index=result.index, dtype=object
    )
    return result


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, fashion_train) -> pd.DataFrame:
    """One batch holding an example of every rule, plus clean images and their copies."""
    d = tmp_path_factory.mktemp("mixed")
    images, _ = fashion_train
    paths = []

    def put(name, pixels, saver=save_png):
        paths.append(saver(d / name, pixels))

    sharp = photo(6)
    put("sharp.png", sharp)
    shutil.copyfile(d / "sharp.png", d / "sharp-byte-copy.png")
    paths.append(d / "sharp-byte-copy.png")
    cv2.imwrite(str(d / "sharp-resaved.png"), cv2.cvtColor(sharp, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    paths.append(d / "sharp-resaved.png")
    for seed in (7, 8, 9, 10, 11):
        put(f"photo{seed}.png", photo(seed))
    put("photo7-q75.jpg", photo(7), save_jpeg)
    put("photo8-brighter.png", brighter(photo(8)))
    put("photo9-0.8x.png", shrunk(photo(9)))
    for k in range(6):
        put(f"fashion{k}.png", images[k])
    put("tiny.png", cv2.resize(images[0], (12, 12), interpolation=cv2.INTER_AREA))
    put("constant.png", np.full((128, 128), 90, dtype=np.uint8))
    rng = np.random.default_rng(0)
    put("constant-noise.png", (90 + rng.integers(-1, 2, (128, 128))).astype(np.uint8))
    put("blurred.png", cv2.GaussianBlur(photo(5), (0, 0), 8))
    broken = io.BytesIO()
    Image.fromarray(photo(4)).save(broken, "PNG")
    (d / "truncated.png").write_bytes(broken.getvalue()[: len(broken.getvalue()) // 2])
    paths += [d / "truncated.png", d / "does-not-exist.png"]
    return run(paths)


def test_undecodable_and_missing_files_are_corrupt_without_scores(mixed):
    for name in ("truncated.png", "does-not-exist.png"):
        row = mixed.loc[name]
        assert (row["status"], row["reason"]) == ("removed", "corrupt")
        assert pd.isna(row["sharpness"]) and pd.isna(row["phash"])


def test_twelve_pixel_image_is_too_small(mixed):
    row = mixed.loc["tiny.png"]
    assert (row["status"], row["reason"], row["min_side"]) == ("removed", "too_small", 12)


def test_constant_images_have_low_information(mixed):
    const, noise = mixed.loc["constant.png"], mixed.loc["constant-noise.png"]
    assert const["reason"] == noise["reason"] == "low_information"
    assert const["std"] == 0 and const["entropy"] == 0
    assert noise["std"] < 2.0  # std fires although the entropy (~1.6 bits of three grey levels) passes
    assert noise["entropy"] > 1.0


def test_blurred_photo_is_blurry_below_the_absolute_threshold(mixed):
    row = mixed.loc["blurred.png"]
    assert (row["status"], row["reason"]) == ("removed", "blurry")
    assert row["sharpness"] < row["blur_cutoff"] == 0.3
    assert mixed.loc["sharp.png", "sharpness"] > 5 * row["sharpness"]


def test_byte_copy_and_resaved_png_are_exact_duplicates(mixed):
    for name in ("sharp-byte-copy.png", "sharp-resaved.png"):
        row = mixed.loc[name]
        assert (row["status"], row["reason"], row["duplicate_of"]) == ("removed", "exact_duplicate", "sharp.png")
        assert row["hash_distance"] == 0
        assert row["cluster_size"] == 3
    assert mixed.loc["sharp.png", "status"] == "kept"


@pytest.mark.parametrize(
    ("copy", "original"),
    [("photo7-q75.jpg", "photo7.png"), ("photo8-brighter.png", "photo8.png"), ("photo9-0.8x.png", "photo9.png")],
)
def test_reencoded_brightened_and_resized_copies_are_near_duplicates(mixed, copy, original):
    """One of each pair goes, pointing at the other; the keep rule (more pixels, then sharper) picks which."""
    pair = mixed.loc[[copy, original]]
    removed, kept = pair[pair["status"] == "removed"], pair[pair["status"] == "kept"]
    assert len(removed) == len(kept) == 1
    assert removed["reason"].iloc[0] == "near_duplicate"
    assert removed["duplicate_of"].iloc[0] == kept.index[0]
    assert 0 <= removed["hash_distance"].iloc[0] <= 10
    assert removed["cluster_size"].iloc[0] == kept["cluster_size"].iloc[0] == 2
    if copy.endswith("0.8x.png"):
        assert kept.index[0] == original  # more pixels
    else:
        assert kept["sharpness"].iloc[0] > removed["sharpness"].iloc[0]


def test_at_equal_size_the_sharper_of_png_and_jpeg_is_kept(mixed):
    """Documents the keep rule at work on a re-encode: whichever of the two scores sharper stays."""
    png, jpeg = mixed.loc["photo7.png"], mixed.loc["photo7-q75.jpg"]
    kept, removed = ("photo7.png", jpeg) if png["sharpness"] > jpeg["sharpness"] else ("photo7-q75.jpg", png)
    assert removed["duplicate_of"] == kept
    assert removed["duplicate_match"] in ("phash+ncc", "layout+align")


def test_distinct_images_are_kept(mixed):
    names = ["sharp.png", "photo10.png", "photo11.png", *(f"fashion{k}.png" for k in range(6))]
    assert (mixed.loc[names, "status"] == "kept").all()
    assert mixed.loc[names, "reason"].isna().all()
    assert mixed.loc[names, "duplicate_of"].isna().all()


def test_every_duplicate_points_at_a_kept_image(mixed):
    dups = mixed[mixed["reason"].isin(["exact_duplicate", "near_duplicate"])]
    assert len(dups) == 5
    assert (mixed.loc[dups["duplicate_of"], "status"] == "kept").all()
    assert set(mixed["reason"].dropna()) == set(REASONS)


def test_many_distinct_images_are_not_flagged(tmp_path, fashion_train):
    images, _ = fashion_train
    paths = [save_png(tmp_path / f"photo{s}.png", photo(s, 160)) for s in range(20)]
    paths += [save_png(tmp_path / f"fashion{k}.png", images[k]) for k in range(100, 140)]
    result = run(paths)
    assert (result["status"] == "kept").all(), result[result["status"] != "kept"][["reason", "duplicate_of"]]


def test_clean_paths_reports_the_time_of_its_feature_pass_and_of_its_decisions(tmp_path, fashion_train):
    images, _ = fashion_train
    paths = [save_png(tmp_path / f"fashion{k}.png", images[k]) for k in range(8)]
    timings: dict[str, float] = {}
    started = time.perf_counter()
    clean_paths(paths, CleanRules(**EXAMPLE_RULES), workers=1, timings=timings)
    wall = time.perf_counter() - started
    assert set(timings) == {"features", "decide"}
    assert all(t > 0 for t in timings.values())
    assert sum(timings.values()) <= wall


def blas_threads() -> set[int]:
    """The thread counts of every BLAS library loaded in this process."""
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def test_decisions_run_on_one_blas_thread_and_leave_the_setting_as_it_was(tmp_path, fashion_train, monkeypatch):
    import synthaug.clean.decision as decision

    seen: list[set[int]] = []
    real = decision.find_duplicates

    def spy(*args, **kwargs):
        seen.append(blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(decision, "find_duplicates", spy)
    images, _ = fashion_train
    paths = [save_png(tmp_path / f"fashion{k}.png", images[k]) for k in range(4)]
    with threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        clean_paths(paths, CleanRules(**EXAMPLE_RULES), workers=1)
        after = blas_threads()
    assert seen == [{1}]
    assert before == after == {2}


def test_the_first_failing_rule_is_the_reason(tmp_path):
    blurred = cv2.GaussianBlur(photo(1), (0, 0), 8)
    paths = [
        save_png(tmp_path / "tiny-constant.png", np.zeros((10, 10), dtype=np.uint8)),  # too_small and flat
        save_png(tmp_path / "constant.png", np.zeros((100, 100), dtype=np.uint8)),  # flat and not sharp
        save_png(tmp_path / "blurred.png", blurred),  # blurry ...
        save_png(tmp_path / "blurred-copy.png", blurred),  # ... and a copy of it: still blurry
        save_png(tmp_path / "tiny-copy-a.png", shrunk(photo(2), 0.05)),  # too_small ...
        save_png(tmp_path / "tiny-copy-b.png", shrunk(photo(2), 0.05)),  # ... twice: never a duplicate
    ]
    (tmp_path / "tiny-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    paths.append(tmp_path / "tiny-broken.png")  # corrupt comes first of all
    result = run(paths)
    assert result["reason"].to_dict() == {
        "tiny-constant.png": "too_small",
        "constant.png": "low_information",
        "blurred.png": "blurry",
        "blurred-copy.png": "blurry",
        "tiny-copy-a.png": "too_small",
        "tiny-copy-b.png": "too_small",
        "tiny-broken.png": "corrupt",
    }
    assert result["duplicate_of"].isna().all()


def test_percentile_mode_flags_exactly_the_blurriest_share(tmp_path):
    paths = [save_png(tmp_path / f"photo{s:02d}.png", photo(s, 128)) for s in range(18)]
    paths += [save_png(tmp_path / f"blurred{s}.png", cv2.GaussianBlur(photo(s, 128), (0, 0), 3)) for s in (40, 41)]
    # images removed by earlier rules are not part of the population the percentile is taken over
    paths.append(save_png(tmp_path / "constant.png", np.full((128, 128), 50, dtype=np.uint8)))
    paths.append(save_png(tmp_path / "tiny.png", photo(42, 12)))

    ten = run(paths, blur_mode="percentile", blur_percentile=10)
    assert sorted(ten.index[ten["reason"] == "blurry"]) == ["blurred40.png", "blurred41.png"]
    population = ten[ten["reason"].isna() | (ten["reason"] == "blurry")]
    assert len(population) == 20
    cutoff = ten["blur_cutoff"].iloc[0]
    assert cutoff == pytest.approx(np.percentile(population["sharpness"], 10))
    assert (ten.loc[ten["reason"] == "blurry", "sharpness"] < cutoff).all()
    assert (ten.loc[ten["status"] == "kept", "sharpness"] >= cutoff).all()

    five = run(paths, blur_mode="percentile", blur_percentile=5)
    blurriest = population["sharpness"].idxmin()
    assert list(five.index[five["reason"] == "blurry"]) == [blurriest]

    none = run(paths, blur_mode="percentile", blur_percentile=0)
    assert "blurry" not in set(none["reason"].dropna())


def test_absolute_mode_uses_the_threshold_and_off_mode_never_flags(tmp_path):
    original = photo(4)
    paths = [
        save_png(tmp_path / "sharp.png", photo(3)),
        save_png(tmp_path / "soft.png", cv2.GaussianBlur(original, (0, 0), 3)),
    ]
    lenient = run(paths, blur_threshold=0.01)
    assert lenient["status"].tolist() == ["kept", "kept"]  # both above 0.01
    soft = lenient.loc["soft.png", "sharpness"]
    assert soft < quality_scores(original).sharpness / 5
    strict = run(paths, blur_threshold=soft + 0.01)
    assert strict["reason"].to_dict() == {"sharp.png": None, "soft.png": "blurry"}
    off = run(paths, blur_mode="off", blur_threshold=1e9)
    assert off["status"].tolist() == ["kept", "kept"]
    assert off["blur_cutoff"].isna().all()


def test_inside_a_batch_the_larger_copy_wins_even_when_listed_second(tmp_path):
    original = photo(11, 224)
    paths = [save_png(tmp_path / "a-small.png", shrunk(original)), save_png(tmp_path / "b-large.png", original)]
    result = run(paths)
    assert result.loc["a-small.png", "duplicate_of"] == "b-large.png"
    assert result.loc["a-small.png", "reason"] == "near_duplicate"
    assert result.loc["b-large.png", "status"] == "kept"


def test_inside_a_batch_at_equal_size_the_sharper_copy_wins(tmp_path):
    original = photo(12)
    softer = cv2.GaussianBlur(original, (0, 0), 0.6)
    paths = [save_png(tmp_path / "a-softer.png", softer), save_png(tmp_path / "b-original.png", original)]
    result = run(paths)
    assert result.loc["a-softer.png", "sharpness"] < result.loc["b-original.png", "sharpness"]
    assert result.loc["a-softer.png", "duplicate_of"] == "b-original.png"
    assert result.loc["b-original.png", "status"] == "kept"


def test_identical_copies_keep_the_smallest_image_id(tmp_path):
    pixels = photo(13)
    paths = [save_png(tmp_path / f"copy{k}.png", pixels) for k in range(4)]
    result = run(paths)  # clean_paths numbers the images in list order
    assert result["status"].tolist() == ["kept", "removed", "removed", "removed"]
    assert result["duplicate_of"].tolist() == [None, "copy0.png", "copy0.png", "copy0.png"]


def frame_of(paths: list[Path], prefix: str) -> pd.DataFrame:
    ids = [f"{prefix}-{p.name}" for p in paths]
    return features_frame(ids, [str(p) for p in paths], CleanRules(), workers=1)


def test_the_earliest_batch_wins_even_over_a_larger_sharper_copy(tmp_path):
    original = photo(14, 224)
    first = [save_png(tmp_path / "small.png", shrunk(original)), save_png(tmp_path / "other.png", photo(15))]
    second = [save_png(tmp_path / "large.png", original), save_jpeg(tmp_path / "other-q75.jpg", photo(15))]
    f1, f2 = frame_of(first, "b1"), frame_of(second, "b2")
    rules = CleanRules(**EXAMPLE_RULES)
    result = decide([f1, f2], rules).set_index("image_id")
    assert result["duplicate_of"].to_dict() == {"b2-large.png": "b1-small.png", "b2-other-q75.jpg": "b1-other.png"}
    assert set(result["reason"]) == {"near_duplicate"}
    alone = decide([f2], rules)
    assert (alone["status"] == "kept").all()
    earlier = decide([f1], rules)
    assert (earlier["status"] == "kept").all()


def test_features_keep_every_bit_of_the_perceptual_hash_next_to_an_undecodable_file(tmp_path):
    """A missing or broken source must not turn the hash column into floats (53-bit mantissa)."""
    paths = [save_png(tmp_path / f"photo{s}.png", photo(s, 128)) for s in range(6)]
    (tmp_path / "broken.png").write_bytes(b"not an image")
    expected = [perceptual_hash(read_image(str(p))) for p in paths]
    assert any(h >= 2**53 and h % 2048 for h in expected)  # not representable as a float64

    frame = features_frame(
        [f"id{k}" for k in range(8)], [*map(str, paths), str(tmp_path / "broken.png"), None], CleanRules(), workers=1
    )
    assert frame["ok"].tolist() == [True] * 6 + [False, False]
    assert [int(h) for h in frame["phash"][:6]] == expected

    result = run([*paths, tmp_path / "broken.png"])
    assert result["phash"][:6].tolist() == [f"{h:016x}" for h in expected]


def test_without_undecodable_files_the_hash_is_exact(tmp_path):
    paths = [save_png(tmp_path / f"photo{s}.png", photo(s, 128)) for s in range(6)]
    result = run(paths)
    assert result["phash"].tolist() == [f"{perceptual_hash(read_image(str(p))):016x}" for p in paths]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_side", 0),
        ("min_std", -1.0),
        ("min_entropy", -0.5),
        ("blur_mode", "sometimes"),
        ("blur_percentile", 100.0),
        ("blur_percentile", -1.0),
        ("hash_algorithm", "md5"),
        ("hash_threshold", 65),
        ("hash_threshold", -1),
        ("verify_min_correlation", 1.5),
        ("work_size", 4),
        ("blur_threshold", -10.0),
    ],
)
def test_invalid_rule_values_raise_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        CleanRules(**{field: value})


@pytest.mark.parametrize("field", ["min_std", "min_entropy", "blur_threshold", "blur_percentile"])
def test_nan_thresholds_are_rejected(field):
    """NaN compares false with everything, so a NaN threshold silently switches its rule off."""
    with pytest.raises(ValueError, match=field):
        CleanRules(**{field: math.nan})


def test_every_invalid_field_is_named_in_one_error():
    with pytest.raises(ValueError) as err:
        CleanRules(min_side=0, hash_threshold=99, work_size=2)
    message = str(err.value)
    assert all(name in message for name in ("min_side", "hash_threshold", "work_size"))


def test_defaults_are_valid_and_field_names_list_every_threshold():
    assert CleanRules().blur_mode == "absolute"
    assert CleanRules.field_names()[:3] == ["min_side", "min_std", "min_entropy"]
    assert "verify_min_correlation" in CleanRules.field_names()
