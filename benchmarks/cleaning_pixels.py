"""Pixels for the cleaning benchmark's labeled set (`cleaning_dataset.py`): where originals come from (Fashion-MNIST,
crops of scikit-image's sample photos, procedural renderings), how they are encoded, and every transform that makes
a copy, a colour variant, a blurry or a faint file from them."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, PngImagePlugin

MIN_SOURCE_STD = 12.0
JPEG_QUALITIES = (95, 75, 50, 30)
MIN_NEAR_SIDE = 20
COLOUR_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
GREY_PHOTOS = ("camera", "brick", "grass", "gravel", "moon", "coins", "page", "text")  # not cell/clock: soft-focus
MIN_EDGE_FRACTION = 0.08  # share of crop pixels with a Sobel step >= 8 grey levels
MAX_BLACK_FRACTION = 0.4  # share of crop pixels darker than 16 (retina border)
MAX_CROP_OVERLAP = 0.15
MIN_CROP_SIDE = 128  # crops are only ever shrunk to the 128-256 px output, never enlarged

# --------------------------------------------------------------------------------------------------
# Pixel sources
# --------------------------------------------------------------------------------------------------

_CACHE: dict[str, np.ndarray] = {}


def _fmnist() -> np.ndarray:
    if "fmnist" not in _CACHE:
        from synthaug.ingest.demo_data import load_fashion_mnist

        _CACHE["fmnist"] = load_fashion_mnist("train")[0]
    return _CACHE["fmnist"]


def _photo(name: str) -> np.ndarray:
    """A skimage sample photo as uint8 RGB (grey photos replicated to 3 channels)."""
    if name not in _CACHE:
        import skimage.data

        img = getattr(skimage.data, name)()
        if img.ndim == 3 and img.shape[2] == 4:
            img = img[..., :3]
        if img.dtype != np.uint8:
            img = (img * 255).astype(np.uint8) if img.max() <= 1 else img.astype(np.uint8)
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        _CACHE[name] = np.ascontiguousarray(img)
    return _CACHE[name]


def distinct_fmnist_indices(min_std: float = MIN_SOURCE_STD) -> np.ndarray:
    """Fashion-MNIST train indices with unique pixels (first of each identical group) and grey std >= min_std."""
    images = _fmnist()
    flat = images.reshape(len(images), -1)
    seen: dict[bytes, int] = {}
    for i, row in enumerate(flat):
        seen.setdefault(row.tobytes(), i)
    first = np.sort(np.fromiter(seen.values(), dtype=np.int64))
    return first[flat[first].std(axis=1) >= min_std]


def _crop_is_detailed(grey: np.ndarray) -> bool:
    """A crop that looks in focus and is not mostly empty: enough contrast, edges and non-black pixels."""
    g = grey.astype(np.float32)
    step = np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)) / 4
    return bool(
        g.std() >= MIN_SOURCE_STD and (step >= 8).mean() >= MIN_EDGE_FRACTION and (g < 16).mean() <= MAX_BLACK_FRACTION
    )


def photo_crops(rng: np.random.Generator, attempts_per_photo: int = 4000) -> list[tuple[str, int, int, int, int]]:
    """Distinct crop boxes (photo, x, y, w, h): same-photo boxes overlap <= 15% of the smaller box, grey std >= 12."""
    boxes: list[tuple[str, int, int, int, int]] = []
    for name in COLOUR_PHOTOS + GREY_PHOTOS:
        img = _photo(name)
        h, w = img.shape[:2]
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        accepted: list[tuple[int, int, int, int]] = []
        for _ in range(attempts_per_photo):
            side = int(np.exp(rng.uniform(np.log(MIN_CROP_SIDE), np.log(max(MIN_CROP_SIDE + 1, 0.6 * min(h, w))))))
            aspect = rng.uniform(0.75, 1.33)
            bw, bh = int(side * np.sqrt(aspect)), int(side / np.sqrt(aspect))
            if min(bw, bh) < MIN_CROP_SIDE:
                continue
            if bw >= w or bh >= h:
                continue
            x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            ok = True
            for ax, ay, aw, ah in accepted:
                ix = max(0, min(x + bw, ax + aw) - max(x, ax))
                iy = max(0, min(y + bh, ay + ah) - max(y, ay))
                if ix * iy > MAX_CROP_OVERLAP * min(bw * bh, aw * ah):
                    ok = False
                    break
            if ok and _crop_is_detailed(grey[y : y + bh, x : x + bw]):
                accepted.append((x, y, bw, bh))
        boxes += [(name, *b) for b in accepted]
    return boxes


def render_procedural(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random RGB 'photo-like' scene: gradient, low-frequency blotches, anti-aliased shapes, sensor noise."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height + 1) / 2
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    img = (1 - t)[..., None] * c0 + t[..., None] * c1
    cells = int(rng.integers(3, 8))
    blotch = rng.normal(0, 1, (cells, cells, 3)).astype(np.float32)
    img += cv2.resize(blotch, (width, height), interpolation=cv2.INTER_CUBIC) * rng.uniform(15, 45)
    fine = rng.normal(0, 1, (max(2, height // 3), max(2, width // 3), 3)).astype(np.float32)
    img += cv2.resize(fine, (width, height), interpolation=cv2.INTER_LINEAR) * rng.uniform(6, 16)
    canvas = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(6, 21))):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = rng.integers(0, 4)
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.uniform(0.06, 0.35) * min(width, height))
        if shape == 0:
            axes = (max(2, size), max(2, int(size * rng.uniform(0.3, 1.0))))
            cv2.ellipse(canvas, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        elif shape == 1:
            cv2.rectangle(canvas, (cx - size, cy - size // 2), (cx + size, cy + size // 2), colour, -1, cv2.LINE_AA)
        elif shape == 2:
            pts = (rng.normal(0, size, (int(rng.integers(3, 7)), 2)) + [cx, cy]).astype(np.int32)
            cv2.fillPoly(canvas, [pts], colour, cv2.LINE_AA)
        else:
            end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(canvas, (cx, cy), end, colour, int(rng.integers(1, 6)), cv2.LINE_AA)
    for _ in range(int(rng.integers(1, 4))):
        text = "".join(chr(int(c)) for c in rng.integers(65, 91, int(rng.integers(3, 9))))
        org = (int(rng.integers(0, max(1, width - 40))), int(rng.integers(12, height)))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        scale = float(rng.uniform(0.4, 1.2))
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, int(rng.integers(1, 3)), cv2.LINE_AA)
    noise = rng.normal(0, rng.uniform(2, 6), canvas.shape).astype(np.float32)
    return np.clip(canvas.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def materialize(source: tuple, rng: np.random.Generator) -> tuple[np.ndarray, str, str]:
    """Pixels (grey HxW or RGB HxWx3 uint8), origin string and kind of a planned source."""
    if source[0] == "fmnist":
        index = int(source[1])
        return _fmnist()[index].copy(), f"fmnist/{index}", "grey28"
    if source[0] == "photo":
        _, name, x, y, w, h, out_w, out_h = source
        crop = _photo(name)[y : y + h, x : x + w]
        pixels = cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_AREA)
        if name in GREY_PHOTOS:  # tint grey photos so they are colour images
            tint = rng.uniform(0.6, 1.0, 3)
            pixels = np.clip(pixels.astype(np.float32) * tint, 0, 255).astype(np.uint8)
        return pixels, f"photo/{name}@{x},{y},{w},{h}", "photo"
    _, proc_seed, out_w, out_h = source
    pixels = render_procedural(np.random.default_rng(proc_seed), out_h, out_w)
    return pixels, f"procedural/{proc_seed}", "procedural"


# --------------------------------------------------------------------------------------------------
# Encoding helpers
# --------------------------------------------------------------------------------------------------


def encode(pixels: np.ndarray, fmt: str, quality: int = 90) -> bytes:
    """Encode grey or RGB pixels as PNG or JPEG bytes (OpenCV, deterministic)."""
    bgr = pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    if fmt == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"encoding {fmt} failed")
    return buf.tobytes()


def decode_pil(data: bytes) -> np.ndarray:
    """Decode bytes with Pillow to grey or RGB uint8 pixels."""
    with Image.open(io.BytesIO(data)) as img:
        img = img.convert("L") if img.mode in ("L", "1", "P", "I;16") else img.convert("RGB")
        return np.asarray(img).copy()


def decode_cv2(data: bytes) -> np.ndarray | None:
    """Decode bytes with OpenCV to grey or RGB uint8 pixels (None when OpenCV cannot)."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        return None
    return arr if arr.ndim == 2 else cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def resave_png(pixels: np.ndarray) -> bytes:
    """Re-save pixels as PNG with Pillow and a text chunk, so the bytes differ from an OpenCV PNG."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "re-saved copy")
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", pnginfo=info, compress_level=9)
    return buf.getvalue()


def near_transform(pixels: np.ndarray, transform: str, rng: np.random.Generator) -> tuple[np.ndarray, str, int]:
    """Apply one near-duplicate transform; returns (pixels, params, jpeg quality or 0 for PNG)."""
    h, w = pixels.shape[:2]
    if transform == "resize":
        scale = max(float(rng.uniform(0.5, 0.9)), MIN_NEAR_SIDE / min(h, w))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), f"scale={scale:.3f}", 0
    if transform == "jpeg":
        quality = int(rng.choice(JPEG_QUALITIES))
        return pixels, f"quality={quality}", quality
    if transform == "brightness":
        gain = float(rng.uniform(0.8, 1.2))
        offset = float(rng.uniform(8, 25) * rng.choice([-1, 1]))
        out = np.clip(pixels.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
        return out, f"gain={gain:.3f},offset={offset:.1f}", 0
    if transform == "noise":
        sigma = float(rng.uniform(3, 8))
        out = np.clip(pixels.astype(np.float32) + rng.normal(0, sigma, pixels.shape), 0, 255).astype(np.uint8)
        return out, f"sigma={sigma:.2f}", 0
    if transform == "crop":
        return _crop(pixels, rng.uniform(0.03, 0.08, 2), rng)
    if transform == "crop10":
        return _crop(pixels, rng.uniform(0.05, 0.10, 2), rng)
    if transform == "rotate":
        angle = float(rng.uniform(2, 5) * rng.choice([-1, 1]))
        return _rotate(pixels, angle), f"angle={angle:.2f}", 0
    if transform == "rerender":
        margin = float(rng.uniform(0.03, 0.08))
        pad = max(1, round(margin * min(h, w)))
        border = np.median(np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]), axis=0)
        canvas = np.empty((h + 2 * pad, w + 2 * pad, *pixels.shape[2:]), dtype=np.uint8)
        canvas[...] = np.round(border).astype(np.uint8)
        canvas[pad : pad + h, pad : pad + w] = pixels
        scale = max(float(rng.uniform(0.5, 1.0)), MIN_NEAR_SIDE / min(h, w))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        return cv2.resize(canvas, size, interpolation=cv2.INTER_AREA), f"margin={margin:.3f},scale={scale:.3f}", 0
    if transform == "combined":
        angle = float(rng.uniform(1, 3) * rng.choice([-1, 1]))
        out, crop_params, _ = _crop(_rotate(pixels, angle), rng.uniform(0.02, 0.05, 2), rng)
        scale = max(float(rng.uniform(0.6, 0.95)), MIN_NEAR_SIDE / min(out.shape[:2]))
        size = (max(1, round(out.shape[1] * scale)), max(1, round(out.shape[0] * scale)))
        out = cv2.resize(out, size, interpolation=cv2.INTER_AREA)
        gain, offset = float(rng.uniform(0.9, 1.1)), float(rng.uniform(-12, 12))
        out = np.clip(out.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
        quality = int(rng.integers(50, 91))
        return out, f"angle={angle:.2f},{crop_params},scale={scale:.3f},gain={gain:.2f},quality={quality}", quality
    raise ValueError(transform)


def _crop(pixels: np.ndarray, fractions: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str, int]:
    """Cut `fractions` (x, y) of each axis off, split at random between the two ends."""
    h, w = pixels.shape[:2]
    fx, fy = fractions
    cut_x, cut_y = max(1, round(w * fx)), max(1, round(h * fy))
    left, top = int(rng.integers(0, cut_x + 1)), int(rng.integers(0, cut_y + 1))
    out = pixels[top : h - (cut_y - top), left : w - (cut_x - left)].copy()
    return out, f"crop_x={fx:.3f},crop_y={fy:.3f}", 0


def _rotate(pixels: np.ndarray, angle: float) -> np.ndarray:
    """Rotate about the centre by `angle` degrees and keep the largest centred window that has no new corners."""
    h, w = pixels.shape[:2]
    rad = np.deg2rad(abs(angle))
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    turned = cv2.warpAffine(pixels, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    shrink = np.cos(rad) + np.sin(rad) * max(w, h) / min(w, h)
    cw, ch = max(1, int(w / shrink)), max(1, int(h / shrink))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return turned[y0 : y0 + ch, x0 : x0 + cw].copy()


def recolour(pixels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A colour variant: hue turned 60-180 degrees (colour pixels) or grey pixels tinted with a saturated colour."""
    if pixels.ndim == 2 or np.ptp(pixels.astype(np.int16), axis=2).mean() < 8:
        grey = pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
        hue = int(rng.integers(0, 180))
        colour = cv2.cvtColor(np.array([[[hue, 220, 255]]], dtype=np.uint8), cv2.COLOR_HSV2RGB)[0, 0]
        tinted = grey[..., None].astype(np.float32) * (colour.astype(np.float32) / 255)
        return np.clip(tinted, 0, 255).astype(np.uint8), f"tint_hue={2 * hue}"
    turn = int(rng.integers(30, 91))  # OpenCV hue units are 2 degrees
    hsv = cv2.cvtColor(pixels, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + turn) % 180
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), f"hue_turn={2 * turn}"


def blur(pixels: np.ndarray, variant: str, rng: np.random.Generator) -> tuple[np.ndarray, str, str]:
    """Blurred pixels, category and params: heavy Gaussian (2.5-4.5% of the side), mild Gaussian (0.6-1.5 px)
    or motion blur (a 3-9 px line at a random angle), the last two at the native size."""
    if variant == "blurry_motion":
        length = int(rng.integers(3, 10))
        angle = float(rng.uniform(0, 180))
        kernel = np.zeros((length, length), dtype=np.float32)
        kernel[length // 2, :] = 1
        turn = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1.0)
        kernel = cv2.warpAffine(kernel, turn, (length, length), flags=cv2.INTER_LINEAR)
        out = cv2.filter2D(pixels, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)
        return out, variant, f"length={length},angle={angle:.1f}"
    if variant == "blurry_mild":
        sigma = float(rng.uniform(0.6, 1.5))
    else:
        sigma = max(1.2, float(rng.uniform(0.025, 0.045)) * min(pixels.shape[:2]))
    out = cv2.GaussianBlur(pixels, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    return out, variant, f"sigma={sigma:.2f}"


def faint(variant: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A faint linear ramp or radial vignette of 6-40 grey levels in one colour, with noise sigma 0-1.5."""
    h, w = int(rng.integers(64, 257)), int(rng.integers(64, 257))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    amplitude = float(rng.uniform(6, 40))
    if variant == "faint_gradient":
        angle = float(rng.uniform(0, 2 * np.pi))
        ramp = np.cos(angle) * xx / w + np.sin(angle) * yy / h
        shade = (ramp - ramp.min()) / max(1e-6, float(np.ptp(ramp)))
    else:
        radius = np.hypot(xx / w - 0.5, yy / h - 0.5) / np.hypot(0.5, 0.5)
        shade = 1 - radius**2
    base = rng.uniform(40, 215, 3).astype(np.float32)
    noise = float(rng.uniform(0, 1.5))
    img = base + (shade[..., None] - 0.5) * amplitude + rng.normal(0, noise, (h, w, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8), f"amplitude={amplitude:.1f},noise={noise:.2f}"
