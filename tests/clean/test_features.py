"""Cleaning features: perceptual hashes survive a batch with undecodable files bit for bit."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from synthaug.clean.decision import CleanRules, features_frame
from synthaug.clean.features import perceptual_hash


def test_hashes_are_exact_when_the_batch_also_holds_a_broken_file(tmp_path: Path, fashion_train):
    """A column with a gap must not turn 64-bit hashes into float64 (which drops their low bits)."""
    images = fashion_train[0][:30]
    paths = []
    for i, image in enumerate(images):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), image)
        paths.append(str(path))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    paths.insert(7, str(tmp_path / "broken.png"))

    frame = features_frame([str(i) for i in range(len(paths))], paths, CleanRules(), workers=1)

    assert not frame["ok"][7] and frame["phash"][7] is None
    expected = [perceptual_hash(image) for image in images]
    got = [int(h) for i, h in enumerate(frame["phash"]) if i != 7]
    assert got == expected
    assert any(h & 0x7FF for h in expected), "the check needs hashes whose low bits are set"
    assert np.all(frame.loc[frame["ok"], "width"] == 28)


def test_fast_phash_is_bit_identical_to_imagehash(fashion_train):
    """The fast path must give imagehash's phash exactly, or thresholds calibrated on it would drift."""
    import imagehash
    from PIL import Image

    from synthaug.clean.features import fast_phash

    rng = np.random.default_rng(0)
    samples = list(fashion_train[0][:200]) + [
        rng.integers(0, 256, s, dtype=np.uint8) for s in [(1, 1), (3, 7), (256, 180)]
    ]
    for grey in samples:
        assert fast_phash(grey) == int(str(imagehash.phash(Image.fromarray(grey))), 16)


def test_detail_computed_for_the_whole_batch_matches_each_file_alone(tmp_path: Path, fashion_train):
    """`compute_features` scores `detail` for all thumbnails at once; each file read and scored on its own gives the
    same value, and a file that cannot be decoded gets none."""
    from synthaug.clean.blur import DETAIL_BLOCK, detail_score, detail_scores
    from synthaug.clean.features import compute_features
    from synthaug.clean.quality import quality_scores
    from synthaug.ingest.imageio import read_image

    paths = []
    for i, image in enumerate(fashion_train[0][:40]):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), image)
        paths.append(str(path))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    paths.insert(3, str(tmp_path / "broken.png"))

    results = compute_features(paths, workers=1)

    assert results[3] is None
    for path, feats in zip(paths, results, strict=True):
        if feats is not None:
            alone = quality_scores(read_image(path)).detail
            assert feats["detail"] == pytest.approx(alone, rel=1e-9, abs=1e-9)
            assert detail_score(np.frombuffer(feats["thumb"], np.uint8)) == pytest.approx(alone, rel=1e-9, abs=1e-9)
    thumbs = np.stack([np.frombuffer(r["thumb"], np.uint8) for r in results if r is not None])
    many = np.concatenate([thumbs] * (DETAIL_BLOCK // len(thumbs) + 1))  # spans more than one block
    np.testing.assert_allclose(detail_scores(many), np.tile(detail_scores(thumbs), len(many) // len(thumbs)))
