"""What trellis quantisation and progressive encoding cost and buy, per output size.

    .venv/bin/python bench/jpeg_encoders.py [--corpus ../shared/corpus] [--repeat 5]

For each photo and output width (300, 800, 1200, 2000), the photo is resized
once (as pixelpipe would), then encoded at q80 four ways: baseline and
progressive, each with and without mozjpeg's trellis quantisation (optimised
Huffman tables always). Reported per width, summed over the photos: bytes,
mean SSIM on luma against the unencoded resized image, and encode time
(median of --repeat runs), each relative to plain baseline. Because trellis
also moves quality, the last column gives bytes at equal SSIM: the plain
baseline encoder's bytes at the quality whose SSIM matches (interpolated
over q70..q90), against the variant's bytes.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import pyvips

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.run import photo_like  # noqa: E402
from proxy.pipeline.metrics import ssim  # noqa: E402

WIDTHS = (300, 800, 1200, 2000)
VARIANTS = {
    "baseline": {"trellis_quant": False, "interlace": False},
    "progressive": {"trellis_quant": False, "interlace": True},
    "baseline + trellis": {"trellis_quant": True, "interlace": False},
    "progressive + trellis (pixelpipe)": {"trellis_quant": True, "interlace": True},
}


def encode(image: pyvips.Image, quality: int, **variant: bool) -> bytes:
    return image.jpegsave_buffer(
        Q=quality, optimize_coding=True, subsample_mode="auto", keep="none", **variant
    )


def timed(image: pyvips.Image, repeat: int, **variant: bool) -> tuple[bytes, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        data = encode(image, 80, **variant)
        times.append(time.perf_counter() - started)
    return data, statistics.median(times)


def quality_curve(image: pyvips.Image) -> list[tuple[float, int]]:
    """(SSIM, bytes) of the plain baseline encoder from q70 to q90."""
    curve = []
    for quality in range(70, 91, 2):
        data = encode(image, quality, **VARIANTS["baseline"])
        curve.append((ssim(image, pyvips.Image.new_from_buffer(data, "")), len(data)))
    return sorted(curve)


def bytes_at(curve: list[tuple[float, int]], target: float) -> float:
    for (s0, b0), (s1, b1) in itertools.pairwise(curve):
        if s0 <= target <= s1:
            return b0 + (b1 - b0) * ((target - s0) / (s1 - s0) if s1 > s0 else 0)
    return float(curve[0][1] if target < curve[0][0] else curve[-1][1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.corpus:
        photos = [
            pyvips.Image.new_from_file(str(p))
            for p in sorted(args.corpus.glob("*.jpg"))
            if pyvips.Image.new_from_file(str(p)).width == 2560
        ]
    else:
        photos = [photo_like(2560, 1600, seed) for seed in range(6)]
    print(f"{len(photos)} photos, q80, encode time median of {args.repeat}\n")
    print(
        "| width | variant | bytes | vs baseline | mean SSIM | encode ms/image "
        "| vs baseline | baseline bytes at this SSIM / variant bytes |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for width in WIDTHS:
        resized = [photo.thumbnail_image(width).copy_memory() for photo in photos]
        curves = [quality_curve(image) for image in resized]
        rows = {}
        for name, variant in VARIANTS.items():
            total_bytes, total_time, ssims, equal = 0, 0.0, [], []
            for image, curve in zip(resized, curves, strict=True):
                data, seconds = timed(image, args.repeat, **variant)
                score = ssim(image, pyvips.Image.new_from_buffer(data, ""))
                total_bytes += len(data)
                total_time += seconds
                ssims.append(score)
                equal.append(bytes_at(curve, score))
            rows[name] = (total_bytes, total_time, statistics.mean(ssims), sum(equal))
        base_bytes, base_time = rows["baseline"][0], rows["baseline"][1]
        for name, (total_bytes, total_time, mean_ssim, equal_bytes) in rows.items():
            print(
                f"| {width} | {name} | {total_bytes} | {total_bytes / base_bytes:.3f} "
                f"| {mean_ssim:.4f} | {total_time / len(photos) * 1000:.2f} "
                f"| {total_time / base_time:.2f} | {equal_bytes / total_bytes:.3f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
