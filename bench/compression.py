"""Compression evidence on real photos: writes the tables of COMPRESSION.md.

    .venv/bin/python bench/compression.py --corpus ../shared/corpus [--size 1200] > COMPRESSION.md

Every number comes from pixelpipe's own pipeline and its /info report
(`proxy.info.image_report`): the image is processed as a URL asks
(`rs:fit:SIZE:SIZE`, then quality / max_bytes), encoded, decoded again and
measured against the unencoded processed image. No network is used.
quality:auto's tables come from bench/auto_quality.py.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from proxy.info import image_report  # noqa: E402
from proxy.options import ParserConfig, parse_options, split_path  # noqa: E402
from proxy.pipeline.encode import EncoderSettings  # noqa: E402
from proxy.pipeline.process import ProcessingLimits  # noqa: E402
from proxy.settings import Settings  # noqa: E402

FORMATS = ("jpeg", "webp", "avif")
QUALITIES = tuple(range(20, 101, 10))
# Every quality measured per image: the table shows QUALITIES, the bound uses all.
GRID = tuple(sorted(set(range(20, 96, 5)) | set(QUALITIES)))
BUDGETS = (10_000, 30_000, 60_000, 100_000)
LIMITS = ProcessingLimits.from_settings(Settings())
ENCODER = EncoderSettings.from_settings(Settings())


def report(data: bytes, path: str) -> dict[str, Any]:
    split = split_path("/unsafe" + path)  # the signature segment; not checked here
    options = parse_options(
        split.option_segments, split.source_url, split.extension, ParserConfig()
    )
    # The server's limits and encoders with default settings, built as the server builds them.
    return image_report(data, options, LIMITS, None, ENCODER)["result"]


def median(values: list[float]) -> float:
    return statistics.median(values)


# (format, image) -> quality -> the /info report of that result.
Curves = dict[tuple[str, str], dict[int, dict[str, Any]]]


def rate_distortion(images: dict[str, bytes], size: int) -> Curves:
    return {
        (fmt, name): {
            quality: report(data, f"/rs:fit:{size}:{size}/q:{quality}/plain/local:///{name}@{fmt}")
            for quality in GRID
        }
        for fmt in FORMATS
        for name, data in images.items()
    }


def quality_table(images: dict[str, bytes], curves: Curves) -> list[str]:
    lines = [
        "| format | quality | median bytes | median compression ratio | median PSNR dB "
        "| median SSIM | lowest SSIM | median SSIMULACRA2 | lowest SSIMULACRA2 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for fmt in FORMATS:
        for quality in QUALITIES:
            rows = [curves[fmt, name][quality] for name in images]
            lines.append(
                f"| {fmt} | {quality} | {median([r['bytes'] for r in rows]):,.0f} "
                f"| {median([r['compression_ratio'] for r in rows]):.1f} "
                f"| {median([r['psnr'] for r in rows]):.2f} "
                f"| {median([r['ssim'] for r in rows]):.4f} | {min(r['ssim'] for r in rows):.4f} "
                f"| {median([r['ssimulacra2'] for r in rows]):.1f} "
                f"| {min(r['ssimulacra2'] for r in rows):.1f} |"
            )
    return lines


def fewest_bytes(options: list[list[tuple[float, int]]], target_mean: float) -> int:
    """The fewest total bytes of any one choice per image whose mean SSIM >= target.

    `options[i]` lists image i's (SSIM, bytes) at every quality measured. An
    exact search over all choices, kept small by holding only the Pareto front
    of (SSIM sum, bytes) after each image. SSIM sums are rounded up to 1e-5, so
    the answer can only be lower than the true optimum: a bound that no rule
    choosing a quality per image, however clever, can beat on these curves.
    """
    front: dict[int, int] = {0: 0}  # SSIM sum in 1e-5 units -> fewest bytes
    for choices in options:
        grown: dict[int, int] = {}
        for total, size in front.items():
            for ssim_value, nbytes in choices:
                key = total + math.ceil(ssim_value * 100_000)
                if grown.get(key, math.inf) > size + nbytes:
                    grown[key] = size + nbytes
        front, best = {}, math.inf
        for key in sorted(grown, reverse=True):  # keep a sum only if it is also cheaper
            if grown[key] < best:
                best = front[key] = grown[key]
    need = math.floor(target_mean * len(options) * 100_000)
    return min(size for total, size in front.items() if total >= need)


def bound_table(images: dict[str, bytes], curves: Curves) -> list[str]:
    """What any per-image quality choice could save against q80, and against JPEG q80."""
    lines = [
        "| format | q80 total bytes | q80 mean SSIM | fewest bytes at that mean SSIM "
        "| best possible saving | fewest bytes at JPEG q80's mean SSIM | vs JPEG q80 |",
        "|---|---|---|---|---|---|---|",
    ]
    names = list(images)
    jpeg80 = [curves["jpeg", name][80] for name in names]
    jpeg_total = sum(r["bytes"] for r in jpeg80)
    jpeg_mean = statistics.mean(r["ssim"] for r in jpeg80)
    for fmt in FORMATS:
        fixed = [curves[fmt, name][80] for name in names]
        total = sum(r["bytes"] for r in fixed)
        mean = statistics.mean(r["ssim"] for r in fixed)
        options = [[(r["ssim"], r["bytes"]) for r in curves[fmt, name].values()] for name in names]
        best = fewest_bytes(options, mean)
        versus_jpeg = fewest_bytes(options, jpeg_mean)
        lines.append(
            f"| {fmt} | {total:,} | {mean:.4f} | {best:,} | {1 - best / total:+.1%} "
            f"| {versus_jpeg:,} | {1 - versus_jpeg / jpeg_total:+.0%} |"
        )
    return lines


def budget_table(images: dict[str, bytes], size: int) -> list[str]:
    lines = [
        "| format | budget bytes | cases | within budget | downscaled | median quality "
        "| median encodes | most encodes | median bytes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for fmt in FORMATS:
        for budget in BUDGETS:
            rows = [
                report(data, f"/rs:fit:{size}:{size}/mb:{budget}/plain/local:///{name}@{fmt}")
                for name, data in images.items()
            ]
            lines.append(
                f"| {fmt} | {budget:,} | {len(rows)} | {sum(r['bytes'] <= budget for r in rows)} "
                f"| {sum(r['downscale'] < 1 for r in rows)} "
                f"| {median([r['quality'] for r in rows]):.0f} "
                f"| {median([r['encodes'] for r in rows]):.0f} | {max(r['encodes'] for r in rows)} "
                f"| {median([r['bytes'] for r in rows]):,.0f} |"
            )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--size", type=int, default=1200, help="results fit in SIZE x SIZE")
    args = parser.parse_args()
    images = {
        path.name: path.read_bytes()
        for path in sorted(args.corpus.iterdir())
        if path.suffix.lower() in (".jpg", ".jpeg", ".png")
    }
    started = time.perf_counter()
    curves = rate_distortion(images, args.size)
    sections = {
        "quality": quality_table(images, curves),
        "bound": bound_table(images, curves),
        "budget": budget_table(images, args.size),
    }
    elapsed = time.perf_counter() - started
    out = [
        f"<!-- generated by: .venv/bin/python bench/compression.py --corpus {args.corpus} "
        f"--size {args.size} ({len(images)} images, {elapsed:.0f} s) -->",
        "",
        "### Quality → size → visual quality",
        "",
        *sections["quality"],
        "",
        "### What any per-image quality choice could do",
        "",
        *sections["bound"],
        "",
        "### max_bytes",
        "",
        *sections["budget"],
    ]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
