"""Small thumbnail grids as base64 PNG markdown, so the Dagster UI can show images a person judges by eye."""

from __future__ import annotations

import base64

import cv2
import numpy as np

from synthaug.core.errors import InvalidInput


def fit_thumbnail(pixels: np.ndarray, cell: int) -> np.ndarray:
    """Scale an image (grey or RGB uint8) to fit a `cell`×`cell` RGB tile, centred on white."""
    rgb = np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels[..., :3]
    h, w = rgb.shape[:2]
    scale = cell / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST
    small = cv2.resize(np.ascontiguousarray(rgb), (nw, nh), interpolation=interp)
    tile = np.full((cell, cell, 3), 255, dtype=np.uint8)
    y, x = (cell - nh) // 2, (cell - nw) // 2
    tile[y : y + nh, x : x + nw] = small
    return tile


def image_row(images: list[np.ndarray], cell: int = 40, pad: int = 2) -> np.ndarray:
    """Tile images left to right with a white gap between them."""
    if not images:
        return np.full((cell, cell, 3), 255, dtype=np.uint8)
    width = len(images) * (cell + pad) - pad
    row = np.full((cell, width, 3), 255, dtype=np.uint8)
    for i, img in enumerate(images):
        x = i * (cell + pad)
        row[:, x : x + cell] = fit_thumbnail(img, cell)
    return row


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an RGB uint8 image as PNG."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise InvalidInput("PNG encoding of a thumbnail failed")
    return buf.tobytes()


def markdown_image(rgb: np.ndarray, alt: str) -> str:
    """An inline markdown image (data URI); the Dagster UI renders it in metadata."""
    return markdown_png(png_bytes(rgb), alt)


def markdown_png(png: bytes, alt: str) -> str:
    """PNG bytes as an inline markdown image (data URI)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def gallery_markdown(groups: dict[str, list[np.ndarray]], cell: int = 40, title: str = "group") -> str:
    """A markdown table with one row of thumbnails per group (class, removal reason, ...)."""
    lines = [f"| {title} | examples |", "|---|---|"]
    for name, images in groups.items():
        safe = str(name).replace("|", "\\|")
        lines.append(f"| {safe} | {markdown_image(image_row(images, cell), safe)} |")
    return "\n".join(lines)
