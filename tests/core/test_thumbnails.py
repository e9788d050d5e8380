"""Thumbnail galleries: markdown tables of inline base64 PNGs that the Dagster UI renders."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image

from synthaug.core.thumbnails import fit_thumbnail, gallery_markdown, image_row, markdown_image, png_bytes

DATA_URI = re.compile(r"!\[(?P<alt>[^\]]*)\]\(data:image/png;base64,(?P<b64>[A-Za-z0-9+/=]+)\)")


def decode_data_uris(markdown: str) -> list[tuple[str, Image.Image]]:
    images = []
    for match in DATA_URI.finditer(markdown):
        img = Image.open(io.BytesIO(base64.b64decode(match["b64"], validate=True)))
        img.load()
        images.append((match["alt"], img))
    return images


def test_gallery_markdown_is_a_table_with_one_png_row_per_group(image_bytes):
    grad = image_bytes.gradient(30, 60)
    grey = image_bytes.gradient(28, 28)[..., 0]
    markdown = gallery_markdown({"cat": [grad, grey], "dog": [grey]}, cell=40, title="label")
    lines = markdown.split("\n")
    assert lines[:2] == ["| label | examples |", "|---|---|"]
    assert len(lines) == 4
    assert lines[2].startswith("| cat | ![cat](data:image/png;base64,")
    assert lines[3].startswith("| dog | ![dog](data:image/png;base64,")

    (alt_cat, cat), (alt_dog, dog) = decode_data_uris(markdown)
    assert (alt_cat, cat.format, cat.mode, cat.size) == ("cat", "PNG", "RGB", (2 * 40 + 2, 40))
    assert (alt_dog, dog.format, dog.mode, dog.size) == ("dog", "PNG", "RGB", (40, 40))
    np.testing.assert_array_equal(np.asarray(dog), fit_thumbnail(grey, 40))


def test_gallery_escapes_pipes_in_group_names(image_bytes):
    markdown = gallery_markdown({"a|b": [image_bytes.gradient(8, 8)]})
    row = markdown.split("\n")[2]
    assert row.startswith("| a\\|b | ![a\\|b](data:image/png;base64,")
    assert len(decode_data_uris(markdown)) == 1


def test_gallery_of_no_groups_is_just_the_header():
    assert gallery_markdown({}) == "| group | examples |\n|---|---|"


def test_fit_thumbnail_keeps_the_aspect_ratio_centred_on_white(image_bytes):
    wide = image_bytes.gradient(20, 40)
    tile = fit_thumbnail(wide, 40)
    assert tile.shape == (40, 40, 3) and tile.dtype == np.uint8
    assert (tile[:10] == 255).all() and (tile[30:] == 255).all(), "white bands above and below"
    np.testing.assert_array_equal(tile[10:30], wide)  # 40 wide already fits: copied unscaled


def test_fit_thumbnail_shrinks_large_images_and_makes_grey_rgb():
    grey = np.full((200, 100), 90, np.uint8)
    tile = fit_thumbnail(grey, 40)
    assert tile.shape == (40, 40, 3)
    np.testing.assert_array_equal(tile[:, 10:30], np.full((40, 20, 3), 90, np.uint8))
    assert (tile[:, :10] == 255).all() and (tile[:, 30:] == 255).all()


def test_fit_thumbnail_drops_alpha_and_enlarges_small_images_with_nearest_neighbour():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 0)
    tile = fit_thumbnail(rgba, 4)
    assert tile.shape == (4, 4, 3)
    np.testing.assert_array_equal(tile[:2, :2], np.full((2, 2, 3), (255, 0, 0), np.uint8))
    assert (tile[2:, 2:] == 0).all()


def test_image_row_of_no_images_is_a_white_cell():
    row = image_row([], cell=16)
    assert row.shape == (16, 16, 3) and (row == 255).all()


def test_png_bytes_round_trips_rgb_channel_order():
    rgb = np.zeros((3, 5, 3), np.uint8)
    rgb[..., 0] = 200  # red
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(rgb))))
    np.testing.assert_array_equal(decoded, rgb)


def test_markdown_image_embeds_the_alt_text():
    md = markdown_image(np.zeros((2, 2, 3), np.uint8), "two by two")
    [(alt, img)] = decode_data_uris(md)
    assert alt == "two by two" and img.size == (2, 2)
