"""The cleaning rules on hard real images, end to end through image files and default rules: mild and motion blur at
the native size, faint gradients that never had detail, recoloured copies that must stay, and copies that moved
by a few percent of scale, shift or rotation, each named by the signal that proposed and the one that confirmed it.

The photo is Grace Hopper's portrait that ships with matplotlib (a real camera image, 512×600), the garments are
Fashion-MNIST items."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from matplotlib import cbook
from PIL import Image

from synthaug.clean.decision import CleanRules, clean_paths
from synthaug.ingest.imageio import read_image


@pytest.fixture(scope="module")
def hopper() -> np.ndarray:
    """The sample photo, shrunk to 256×300 so the tests stay quick (still a real photo's texture)."""
    pixels = read_image(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    return cv2.resize(pixels, (256, 300), interpolation=cv2.INTER_AREA)


def clean(folder: Path, images: dict[str, np.ndarray], rules: CleanRules = CleanRules()) -> pd.DataFrame:
    """Write each image as a PNG file, clean them as one batch, and index the result by file name."""
    paths = []
    for name, pixels in images.items():
        Image.fromarray(pixels).save(folder / name)
        paths.append(folder / name)
    result = clean_paths(paths, rules, workers=1)
    result.index = [Path(p).name for p in result["path"]]
    result["duplicate_of"] = [Path(p).name if isinstance(p, str) else None for p in result["duplicate_of"]]
    reasons = [r if isinstance(r, str) else None for r in result["reason"]]
    result["reason"] = pd.Series(reasons, index=result.index, dtype=object)
    return result


def motion(pixels: np.ndarray, length: int, angle: float) -> np.ndarray:
    """A straight motion blur of `length` px at `angle` degrees."""
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1
    turn = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1.0)
    kernel = cv2.warpAffine(kernel, turn, (length, length))
    return cv2.filter2D(pixels, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)


def rotated(pixels: np.ndarray, angle: float) -> np.ndarray:
    """Turned about the centre, then the largest centred window without new corners (so also a few % zoom)."""
    h, w = pixels.shape[:2]
    turned = cv2.warpAffine(pixels, cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0), (w, h))
    shrink = np.cos(np.deg2rad(abs(angle))) + np.sin(np.deg2rad(abs(angle))) * max(w, h) / min(w, h)
    cw, ch = int(w / shrink), int(h / shrink)
    return turned[(h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw].copy()


def rerendered(pixels: np.ndarray, margin: float, scale: float) -> np.ndarray:
    """The same picture inside a margin of its border colour, rendered at another size."""
    h, w = pixels.shape[:2]
    pad = round(margin * min(h, w))
    border = np.median(pixels[0], axis=0).astype(np.uint8)
    canvas = np.empty((h + 2 * pad, w + 2 * pad, 3), np.uint8)
    canvas[...] = border
    canvas[pad : pad + h, pad : pad + w] = pixels
    size = (round(canvas.shape[1] * scale), round(canvas.shape[0] * scale))
    return cv2.resize(canvas, size, interpolation=cv2.INTER_AREA)


def hue_turned(pixels: np.ndarray, degrees: int) -> np.ndarray:
    hsv = cv2.cvtColor(pixels, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + degrees // 2) % 180
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def test_mild_gaussian_and_motion_blur_at_the_native_size_are_blurry(tmp_path, hopper):
    other = cv2.flip(hopper, 1)  # a mirror image: the same texture, not a duplicate of any blurred file
    result = clean(
        tmp_path,
        {
            "sharp.png": other,
            "gauss-1.0.png": cv2.GaussianBlur(hopper, (0, 0), 1.0),
            "motion-7-horizontal.png": motion(hopper, 7, 0),
            "motion-5-diagonal.png": motion(hopper, 5, 45),
        },
    )
    assert result["reason"].to_dict() == {
        "sharp.png": None,
        "gauss-1.0.png": "blurry",
        "motion-7-horizontal.png": "blurry",
        "motion-5-diagonal.png": "blurry",
    }
    assert (result.loc[["gauss-1.0.png", "motion-7-horizontal.png"], "detail"] > CleanRules().min_detail).all()


def test_faint_ramps_and_vignettes_are_low_information_not_blurry(tmp_path, hopper):
    """They never had detail: a smooth surface explains them, while a heavily blurred photo keeps its structure."""
    yy, xx = np.mgrid[0:200, 0:240].astype(np.float32)
    rng = np.random.default_rng(0)
    ramp = 120 + 30 * xx / 240 + rng.normal(0, 1.0, xx.shape)
    vignette = 150 - 35 * ((xx / 240 - 0.5) ** 2 + (yy / 200 - 0.5) ** 2) * 2 + rng.normal(0, 1.0, xx.shape)
    tint = np.array([1.0, 0.9, 0.7], np.float32)
    result = clean(
        tmp_path,
        {
            "ramp.png": np.clip(ramp[..., None] * tint, 0, 255).astype(np.uint8),
            "vignette.png": np.clip(vignette[..., None] * tint, 0, 255).astype(np.uint8),
            "blurred-photo.png": cv2.GaussianBlur(hopper, (0, 0), 6),
        },
    )
    assert result["reason"].to_dict() == {
        "ramp.png": "low_information",
        "vignette.png": "low_information",
        "blurred-photo.png": "blurry",
    }
    assert (result.loc[["ramp.png", "vignette.png"], "std"] > CleanRules().min_std).all()  # std alone misses them


def test_recoloured_copies_are_kept_while_a_brightened_copy_goes(tmp_path, hopper, fashion_train):
    images, _ = fashion_train
    garment = images[5]
    tinted = np.clip(garment[..., None].astype(np.float32) * np.array([1.0, 0.35, 0.2]), 0, 255).astype(np.uint8)
    result = clean(
        tmp_path,
        {
            "hopper.png": hopper,
            "hopper-hue-90.png": hue_turned(hopper, 90),
            "hopper-hue-180.png": hue_turned(hopper, 180),
            "hopper-brighter.png": np.clip(hopper.astype(np.int16) + 15, 0, 255).astype(np.uint8),
            "garment.png": garment,
            "garment-red.png": tinted,
        },
    )
    removed = result[result["status"] == "removed"]
    assert len(removed) == 1 and removed["reason"].iloc[0] == "near_duplicate"  # the brighter copy or its original
    assert {removed.index[0], removed["duplicate_of"].iloc[0]} == {"hopper.png", "hopper-brighter.png"}
    without_colour = clean(tmp_path, {}, CleanRules(colour_max_distance=0))  # nothing: the check is what keeps them
    assert without_colour.empty
    grey_only = clean_paths(
        [tmp_path / n for n in ("hopper.png", "hopper-hue-180.png")], CleanRules(colour_max_distance=0), workers=1
    )
    assert (grey_only["reason"] == "near_duplicate").sum() == 1  # the grey structure alone would link them


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("rotated-3.png", lambda p: rotated(p, 3.0)),
        ("rotated-minus-4.png", lambda p: rotated(p, -4.0)),
        ("rerendered.png", lambda p: rerendered(p, 0.06, 0.6)),
        ("crop-8pct.png", lambda p: p[12:-12, 10:-10].copy()),
        (
            "rotated-shrunk-jpeg-like.png",
            lambda p: cv2.resize(rotated(p, 2.0), (180, 210), interpolation=cv2.INTER_AREA),
        ),
    ],
)
def test_copies_moved_by_a_little_geometry_are_near_duplicates(tmp_path, hopper, name, make):
    result = clean(tmp_path, {"original.png": hopper, name: make(hopper), "other.png": cv2.flip(hopper, 0)})
    row = result.loc[name]
    assert (row["reason"], row["duplicate_of"]) == ("near_duplicate", "original.png")
    assert row["duplicate_match"] in ("phash+ncc", "crop+window", "phash+align", "layout+align")
    assert result.loc[["original.png", "other.png"], "status"].eq("kept").all()


def test_a_rotated_copy_is_proposed_by_layout_and_confirmed_by_alignment(tmp_path, hopper):
    """pHash moves by more than its threshold under a 4 degree turn; the layout neighbours and the aligned check
    are what link it, and the manifest says so."""
    result = clean(tmp_path, {"original.png": hopper, "turned.png": rotated(hopper, -4.0)})
    assert result.loc["turned.png", "hash_distance"] > CleanRules().hash_threshold
    assert result.loc["turned.png", "duplicate_match"] == "layout+align"
    off = clean(tmp_path, {}, CleanRules(layout_neighbours=0))
    assert off.empty
    no_layout = clean_paths(
        [tmp_path / "original.png", tmp_path / "turned.png"], CleanRules(layout_neighbours=0), workers=1
    )
    assert (no_layout["status"] == "kept").all()


def test_distinct_garments_with_similar_layouts_are_not_linked(tmp_path, fashion_train):
    """Forty different Fashion-MNIST items (many share a class and a silhouette) all stay under the default rules."""
    images, _ = fashion_train
    result = clean(tmp_path, {f"item{k}.png": images[k] for k in range(200, 240)})
    assert (result["status"] == "kept").all(), result[result["status"] != "kept"][["reason", "duplicate_of"]]


def shrunk_copy(pixels: np.ndarray, angle: float) -> np.ndarray:
    """A 28 px garment turned by `angle` degrees, cut by a pixel on every side, shrunk to 22 px and saved as JPEG 70:
    the copy keeps the garment's shape but loses the detail that sets it apart from others of its cut."""
    h, w = pixels.shape
    turned = cv2.warpAffine(pixels, cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0), (w, h))
    small = cv2.resize(turned[1:-1, 1:-1], (22, 22), interpolation=cv2.INTER_AREA)
    return cv2.imdecode(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 70])[1], cv2.IMREAD_GRAYSCALE)


def test_small_copies_that_lost_their_detail_link_to_their_clear_best_match(tmp_path, fashion_train):
    """150 T-shirts and degraded copies of 12 of them: the strict small-image threshold confirms few copies (distinct
    T-shirts correlate as well), the ratio test links most of them, each to its own original, and no original goes."""
    images, labels = fashion_train
    shirts = np.flatnonzero(labels == 0)[:150]
    originals = {f"item{k}.png": images[k] for k in shirts}
    copies = {f"copy{k}.png": shrunk_copy(images[k], 3.0 if j % 2 else -3.0) for j, k in enumerate(shirts[:12])}
    strict = clean(tmp_path, {**originals, **copies}, CleanRules(ratio_neighbours=0))
    result = clean(tmp_path, {**originals, **copies})
    removed = result[result["status"] != "kept"]
    assert set(removed.index) <= set(copies), "an original was removed"
    assert all(removed["duplicate_of"] == removed.index.str.replace("copy", "item"))
    by_ratio = removed[removed["duplicate_match"].str.endswith("+ratio")]
    assert len(by_ratio) >= 6 and (strict.loc[by_ratio.index, "status"] == "kept").all()
    assert len(removed) > (strict["status"] != "kept").sum() + 5


def framed_copy(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28 px garment turned 2-4 degrees, framed by a 3-8% black margin, shrunk to 20-25 px and saved as JPEG 80."""
    h, w = pixels.shape
    angle = rng.uniform(2, 4) * rng.choice([-1, 1])
    turned = cv2.warpAffine(pixels, cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0), (w, h))
    margin = int(round(rng.uniform(0.03, 0.08) * w))
    framed = cv2.copyMakeBorder(turned, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=0)
    side = int(rng.integers(20, 26))
    small = cv2.resize(framed, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.imdecode(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])[1], cv2.IMREAD_GRAYSCALE)


def test_the_ratio_test_finds_copies_far_down_a_dense_layout_neighbourhood(tmp_path, fashion_train):
    """900 T-shirts, pullovers and shirts and framed copies of 30 of them: among so many garments of one cut a copy's
    original is often not among its 32 nearest layout neighbours, so 32 neighbours link few copies; the default
    searches 128 and links more than twice as many, each to its own original."""
    images, labels = fashion_train
    garments = np.concatenate([np.flatnonzero(labels == c)[:300] for c in (0, 2, 6)])
    rng = np.random.default_rng(0)
    originals = {f"item{k}.png": images[k] for k in garments}
    copies = {f"copy{k}.png": framed_copy(images[k], rng) for k in rng.choice(garments, 30, replace=False)}

    def ratio_links(rules: CleanRules) -> pd.DataFrame:
        removed = clean(tmp_path, {**originals, **copies}, rules).query("status != 'kept'")
        return removed[removed["duplicate_match"].str.endswith("+ratio")]

    narrow, wide = ratio_links(CleanRules(ratio_neighbours=32)), ratio_links(CleanRules())
    assert (wide.index.str.startswith("copy") & (wide["duplicate_of"] == wide.index.str.replace("copy", "item"))).all()
    assert len(wide) > 2 * len(narrow) > 0
