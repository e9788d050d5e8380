"""A seeded mutation fuzzer for the per-file entry point of ingest (issue 18).

Valid files of every format the decoder supports are mutated by bit flips, truncations, header-field overwrites
and chunk duplications. Each case goes through the same supervised worker pool ingest uses, so a hang, a crash or
an exhausted memory ceiling is seen as such. An *escape* is a case whose verdict did not come from the decoder's
own error handling: the catch-all (`decoder_error`), `decode_timeout`, `decode_crash` or `decode_memory`.

Run a campaign (and minimize what it finds into `tests/reliability/fuzz_regressions/`):

    .venv/bin/python -m tests.reliability.fuzz --cases 200000 --seed 1 --save
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from synthaug.core.supervised_pool import Failed, PoolLimits, SupervisedPool

REGRESSIONS = Path(__file__).parent / "fuzz_regressions"
ESCAPES = {"decoder_error", "decode_timeout", "decode_crash", "decode_memory"}
_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)

EXIF_ROTATED = bytes.fromhex("457869660000") + bytes.fromhex("4d4d002a00000008000101120003000000010006") + bytes(4)
# (name, Pillow format, mode, save options): every still format Pillow writes here, with its common variants.
SEEDS = [
    ("rgb.png", "PNG", "RGB", {}),
    ("grey.png", "PNG", "L", {}),
    ("palette.png", "PNG", "P", {}),
    ("rgba.png", "PNG", "RGBA", {}),
    ("grey16.png", "PNG", "I;16", {}),
    ("bilevel.png", "PNG", "1", {}),
    ("baseline.jpg", "JPEG", "RGB", {"quality": 90}),
    ("progressive.jpg", "JPEG", "RGB", {"progressive": True}),
    ("grey.jpg", "JPEG", "L", {}),
    ("cmyk.jpg", "JPEG", "CMYK", {}),
    ("exif.jpg", "JPEG", "RGB", {"exif": EXIF_ROTATED}),
    ("still.gif", "GIF", "P", {}),
    ("lossy.webp", "WEBP", "RGB", {"quality": 80}),
    ("lossless.webp", "WEBP", "RGBA", {"lossless": True}),
    ("rgb.bmp", "BMP", "RGB", {}),
    ("palette.bmp", "BMP", "P", {}),
    ("raw.tif", "TIFF", "RGB", {}),
    ("lzw.tif", "TIFF", "RGB", {"compression": "tiff_lzw"}),
    ("deflate.tif", "TIFF", "L", {"compression": "tiff_adobe_deflate"}),
    ("packbits.tif", "TIFF", "RGB", {"compression": "packbits"}),
    ("jpeg.tif", "TIFF", "RGB", {"compression": "jpeg"}),
    ("group4.tif", "TIFF", "1", {"compression": "group4"}),
    ("grey16.tif", "TIFF", "I;16", {}),
    ("float.tif", "TIFF", "F", {}),
    ("icon.ico", "ICO", "RGBA", {}),
    ("pixmap.ppm", "PPM", "RGB", {}),
    ("greymap.pgm", "PPM", "L", {}),
    ("rle.tga", "TGA", "RGB", {"compression": "tga_rle"}),
    ("rgb.sgi", "SGI", "RGB", {}),
    ("palette.pcx", "PCX", "P", {}),
    ("rgb.dds", "DDS", "RGBA", {}),
    ("rgb.im", "IM", "RGB", {}),
    ("palette.blp", "BLP", "P", {}),
    ("rgb.qoi", "QOI", "RGB", {}),
    ("rgb.jp2", "JPEG2000", "RGB", {}),
    ("bitmap.xbm", "XBM", "1", {}),
    ("bitmap.msp", "MSP", "1", {}),
    ("rgb.avif", "AVIF", "RGB", {}),
]
ANIMATED = [("anim.gif", "GIF"), ("anim.webp", "WEBP"), ("anim.png", "PNG"), ("pages.tif", "TIFF")]


def _picture(size: tuple[int, int] = (24, 18)) -> Image.Image:
    """A small picture with edges, gradients and noise, so every encoder has real work to do."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // w, y * 255 // h, (x ^ y) * 8 % 256], axis=-1)
    rgb = rgb + np.random.default_rng(0).integers(0, 40, rgb.shape)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def _convert(img: Image.Image, mode: str) -> Image.Image:
    if mode == "I;16":
        return Image.fromarray((np.asarray(img.convert("L"), dtype=np.uint16) * 257).astype(np.uint16))
    if mode == "F":
        return Image.fromarray(np.asarray(img.convert("L"), dtype=np.float32) / 255)
    return img.convert(mode)


def seed_corpus() -> dict[str, bytes]:
    """Valid files of every supported format (name with extension to bytes)."""
    base = _picture()
    corpus = {}
    for name, fmt, mode, options in SEEDS:
        out = io.BytesIO()
        _convert(base, mode).save(out, fmt, **options)
        corpus[name] = out.getvalue()
    frames = [base, base.rotate(90, expand=False), base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    for name, fmt in ANIMATED:
        out = io.BytesIO()
        first = frames[0].convert("P") if fmt == "GIF" else frames[0]
        first.save(out, fmt, save_all=True, append_images=frames[1:])
        corpus[name] = out.getvalue()
    return corpus


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One to three mutations: bit flips, truncation, a header field overwritten, a chunk duplicated."""
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(0, 4))
        if not out:
            break
        if kind == 0:
            for _ in range(int(rng.integers(1, 9))):
                at = int(rng.integers(0, len(out)))
                out[at] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1:
            out = out[: int(rng.integers(0, len(out)))]
        elif kind == 2:
            width = int(rng.choice([1, 2, 4]))
            at = int(rng.integers(0, max(1, min(len(out), 96) - width + 1)))
            value = int(rng.choice(_INTERESTING)) if rng.random() < 0.7 else int(rng.integers(0, 2**31))
            order = "big" if rng.random() < 0.5 else "little"
            out[at : at + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, order)
        else:
            start = int(rng.integers(0, len(out)))
            chunk = out[start : start + int(rng.integers(1, 64))]
            at = int(rng.integers(0, len(out) + 1))
            out[at:at] = chunk * int(rng.integers(1, 4))
    return bytes(out)


def cases(count: int, seed: int) -> Iterator[tuple[str, bytes]]:
    """`count` mutated files, round-robin over the seed corpus, reproducible from `seed`."""
    corpus = list(seed_corpus().items())
    rng = np.random.default_rng(seed)
    for i in range(count):
        name, data = corpus[i % len(corpus)]
        yield f"case{i:07d}-{name}", mutate(data, rng)


def verdicts(
    named: Iterator[tuple[str, bytes]], workers: int = 2, limits: PoolLimits = PoolLimits(seconds_per_item=10.0)
) -> Iterator[tuple[str, bytes, str, str]]:
    """`(name, data, error_code or "ok", error)` per case, from the per-file entry point in supervised workers."""
    from synthaug.ingest.file_check import DecodeSettings
    from synthaug.ingest.imageio import DEFAULT_MAX_PIXELS

    settings = DecodeSettings(DEFAULT_MAX_PIXELS)

    def units() -> Iterator[list]:
        unit = []
        for name, data in named:
            unit.append(({"source_path": name}, data))
            if len(unit) == 256:
                yield unit
                unit = []
        if unit:
            yield unit

    with SupervisedPool("synthaug.ingest.file_check:make_checker", (settings,), workers=workers, limits=limits) as pool:
        for (row, data), out in pool.map_units(units()):
            if isinstance(out, Failed):
                code = "decoder_error" if out.kind == "exception" else f"decode_{out.kind}"
                yield row["source_path"], data, code, out.detail
            else:
                yield row["source_path"], data, out.get("error_code") or "ok", out.get("error") or ""


def minimize(data: bytes, still_fails) -> bytes:
    """Delta debugging: drop ever smaller chunks while the failure persists."""
    size = max(1, len(data) // 2)
    while size >= 1:
        at, changed = 0, False
        while at < len(data):
            candidate = data[:at] + data[at + size :]
            if candidate and still_fails(candidate):
                data, changed = candidate, True
            else:
                at += size
        if not changed:
            size //= 2
    return data


def _one_verdict(data: bytes) -> str:
    return next(verdicts(iter([("probe", data)]), workers=1, limits=PoolLimits(seconds_per_item=5.0)))[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--save", action="store_true", help="minimize escapes into tests/reliability/fuzz_regressions")
    args = parser.parse_args(argv)
    start = time.monotonic()
    codes: Counter = Counter()
    escapes: list[tuple[str, bytes, str, str]] = []
    for n, (name, data, code, error) in enumerate(verdicts(cases(args.cases, args.seed), args.workers), 1):
        codes[code] += 1
        if code in ESCAPES:
            escapes.append((name, data, code, error))
            print(f"ESCAPE {name}: {code}: {error[:200]}", flush=True)
        if n % 5000 == 0:
            print(f"{n:,} cases, {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)
    took = time.monotonic() - start
    print(f"{args.cases:,} cases in {took:.0f} s ({args.cases / took:.0f}/s): {dict(codes.most_common())}")
    print(f"escapes: {len(escapes)}")
    if args.save:
        REGRESSIONS.mkdir(exist_ok=True)
        for name, data, code, _ in escapes:
            small = minimize(data, lambda d, code=code: _one_verdict(d) == code)
            path = (
                REGRESSIONS / f"{code}-{name.split('-', 1)[1].rsplit('.', 1)[0]}-{len(small)}b.{name.rsplit('.', 1)[1]}"
            )
            path.write_bytes(small)
            print(f"saved {path} ({len(data)} -> {len(small)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
