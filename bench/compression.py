"""Compression evidence on real photos: writes the tables of COMPRESSION.md.

    .venv/bin/python bench/compression.py --corpus ../shared/corpus [--size 1200] > COMPRESSION.md

Every number comes from pixelpipe's own pipeline and its /info report
(`proxy.info.image_report`): the image is processed as a URL asks
(`rs:fit:SIZE:SIZE`, then quality / quality:auto / max_bytes), encoded, decoded
again and measured against the unencoded processed image. No network is used.
"""

from __future__ import annotations

import argparse
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
BUDGETS = (10_000, 30_000, 60_000, 100_000)


def report(data: bytes, path: str) -> dict[str, Any]:
    split = split_path("/unsafe" + path)  # the signature segment; not checked here
    options = parse_options(
        split.option_segments, split.source_url, split.extension, ParserConfig()
    )
    settings = Settings()
    limits = ProcessingLimits(
        settings.max_src_pixels,
        settings.max_animation_frames,
        True,
        preferred_formats=settings.preferred_formats,
    )
    return image_report(data, options, limits, None, EncoderSettings())["result"]


def median(values: list[float]) -> float:
    return statistics.median(values)


def quality_table(images: dict[str, bytes], size: int) -> list[str]:
    lines = [
        "| format | quality | median bytes | median compression ratio | median PSNR dB "
        "| median SSIM | lowest SSIM |",
        "|---|---|---|---|---|---|---|",
    ]
    for fmt in FORMATS:
        for quality in QUALITIES:
            rows = [
                report(data, f"/rs:fit:{size}:{size}/q:{quality}/plain/local:///{name}@{fmt}")
                for name, data in images.items()
            ]
            lines.append(
                f"| {fmt} | {quality} | {median([r['bytes'] for r in rows]):,.0f} "
                f"| {median([r['compression_ratio'] for r in rows]):.1f} "
                f"| {median([r['psnr'] for r in rows]):.2f} "
                f"| {median([r['ssim'] for r in rows]):.4f} | {min(r['ssim'] for r in rows):.4f} |"
            )
    return lines


def auto_table(images: dict[str, bytes], size: int) -> tuple[list[str], list[str]]:
    per_image = [
        "| format | image | q80 bytes | q80 SSIM | auto quality | auto bytes | auto SSIM "
        "| bytes saved | encodes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    summary = [
        "| format | images | median bytes saved | total bytes saved | median SSIM q80 "
        "| median SSIM auto | mean SSIM q80 | mean SSIM auto | images below threshold |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    threshold = EncoderSettings().auto_quality_ssim
    for fmt in FORMATS:
        saved, fixed_ssim, auto_ssim, fixed_total, auto_total, below = [], [], [], 0, 0, 0
        for name, data in images.items():
            fixed = report(data, f"/rs:fit:{size}:{size}/q:80/plain/local:///{name}@{fmt}")
            auto = report(data, f"/rs:fit:{size}:{size}/q:auto/plain/local:///{name}@{fmt}")
            saving = 1 - auto["bytes"] / fixed["bytes"]
            saved.append(saving)
            fixed_ssim.append(fixed["ssim"])
            auto_ssim.append(auto["ssim"])
            fixed_total += fixed["bytes"]
            auto_total += auto["bytes"]
            below += auto["ssim"] < threshold
            per_image.append(
                f"| {fmt} | {name} | {fixed['bytes']:,} | {fixed['ssim']:.4f} | {auto['quality']} "
                f"| {auto['bytes']:,} | {auto['ssim']:.4f} | {saving:+.0%} | {auto['encodes']} |"
            )
        summary.append(
            f"| {fmt} | {len(images)} | {median(saved):+.0%} | {1 - auto_total / fixed_total:+.0%} "
            f"| {median(fixed_ssim):.4f} | {median(auto_ssim):.4f} "
            f"| {statistics.mean(fixed_ssim):.4f} | {statistics.mean(auto_ssim):.4f} | {below} |"
        )
    return summary, per_image


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
    sections = {
        "quality": quality_table(images, args.size),
        "auto": auto_table(images, args.size),
        "budget": budget_table(images, args.size),
    }
    elapsed = time.perf_counter() - started
    summary, per_image = sections["auto"]  # type: ignore[misc]
    out = [
        f"<!-- generated by: .venv/bin/python bench/compression.py --corpus {args.corpus} "
        f"--size {args.size} ({len(images)} images, {elapsed:.0f} s) -->",
        "",
        "### Quality → size → visual quality",
        "",
        *sections["quality"],  # type: ignore[misc]
        "",
        "### quality:auto against fixed quality 80",
        "",
        *summary,
        "",
        "<details><summary>per image</summary>",
        "",
        *per_image,
        "",
        "</details>",
        "",
        "### max_bytes",
        "",
        *sections["budget"],  # type: ignore[misc]
    ]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
