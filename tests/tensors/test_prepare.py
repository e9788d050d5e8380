"""prepare_image's fits: padding and stretching a non-square image (center-crop is covered by build_tensors)."""

from __future__ import annotations

import numpy as np

from synthaug.tensors.prepare import prepare_image


def test_prepare_image_pads_or_stretches_on_request():
    wide = np.zeros((20, 40), np.uint8)
    wide[:, :20] = 200
    padded, notes = prepare_image(wide, 16, 1, "pad")
    assert notes == ["padded 40x20->40x40", "resized 40x40->16x16"] and padded.shape == (16, 16, 1)
    assert padded[0, 0, 0] == 0 and padded[8, 2, 0] == 200
    stretched, notes = prepare_image(wide, 16, 1, "stretch")
    assert notes == ["stretched 40x20", "resized 40x20->16x16"] and stretched[0, 2, 0] == 200
