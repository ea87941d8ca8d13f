"""AVIF_SPEED: what each libaom speed saves against JPEG, what it costs, and
how its bytes follow quality:auto's probes (issue 26).

    .venv/bin/python bench/avif_speed.py --corpus ../shared/corpus [--speeds 9,8,7,6,5,4]

Every photograph is fit in SIZE x SIZE by pixelpipe's own pipeline (as
`rs:fit:1200:1200` asks), then:

1. Against JPEG: each image encoded as JPEG q80 (pixelpipe's JPEG settings),
   and as AVIF at qualities 35-95 at each speed; the AVIF bytes at the JPEG's
   SSIM read off that image's AVIF curve (interpolated), summed over the
   corpus, against JPEG q80's total. Encode time: the median over the images
   of one AVIF encode at q60 (one thread of this process at a time).
2. quality:auto's probes run at speed 9 on a sample of the rows
   (`quality_sample`); their bytes are divided by probe_bytes_ratio() to stand
   for the real encoder's. Here: the median over images and qualities 40-85
   of (probe bytes at speed 9) / (the sample's bytes at the speed), at 300
   and 1200 px, as pixelpipe's probes encode it (`as_pixels`).

3. `--bit-depth`: 8- against 10-bit AV1 at the default speed, measured as in 1.
4. `--tunes iq,ssim,psnr`: libaom's tuning (heifsave's `tune`; unset is
   libheif's default) at the default speed, measured as in 1 and also by
   SSIMULACRA2: the bytes at each image's JPEG q80 SSIMULACRA2, so a tuning
   that buys SSIM with what the eye sees shows here.
5. `--heic-presets default,medium,fast`: HEIC's x265 presets, measured as in 1
   (HEIC at qualities 20-90).

SSIM is pixelpipe's (luma, what /info reports). No network is used.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import pyvips  # noqa: E402

from proxy.app import configure_libvips  # noqa: E402
from proxy.options import ParserConfig, parse_options, split_path  # noqa: E402
from proxy.pipeline.auto_quality import quality_sample  # noqa: E402
from proxy.pipeline.encode import EncoderSettings, encode  # noqa: E402
from proxy.pipeline.foreign_save import heic_bytes  # noqa: E402
from proxy.pipeline.load import decode_result  # noqa: E402
from proxy.pipeline.metrics import comparable, ssim  # noqa: E402
from proxy.pipeline.process import ProcessingLimits, _render  # noqa: E402
from proxy.pipeline.ssimulacra2 import ssimulacra2  # noqa: E402
from proxy.settings import Settings  # noqa: E402

SIZE = 1200
AVIF_QUALITIES = range(35, 96, 5)
PROBE_QUALITIES = tuple(range(40, 86, 5))
LIMITS = ProcessingLimits.from_settings(Settings())


def render(path: Path, size: int) -> pyvips.Image:
    split = split_path(f"/unsafe/rs:fit:{size}:{size}/plain/local:///{path.name}@avif")
    options = parse_options(
        split.option_segments, split.source_url, split.extension, ParserConfig()
    )
    return _render(path.read_bytes(), options, LIMITS, None).image.copy_memory()


def bytes_at(curve: list[tuple[float, int]], target: float) -> float:
    """Bytes at score `target` on a curve of (score, bytes), linearly between points."""
    points = sorted(curve)
    for (low_ssim, low_bytes), (high_ssim, high_bytes) in itertools.pairwise(points):
        if low_ssim <= target <= high_ssim:
            if high_ssim == low_ssim:
                return float(low_bytes)
            share = (target - low_ssim) / (high_ssim - low_ssim)
            return low_bytes + (high_bytes - low_bytes) * share
    raise ValueError(
        f"score {target:.4f} is outside the curve {points[0][0]:.4f}-{points[-1][0]:.4f}"
    )


@dataclass(frozen=True, slots=True)
class Anchor:
    """The photographs fit for the measure, and JPEG q80's SSIM and bytes on them."""

    images: dict[str, pyvips.Image]
    references: dict[str, pyvips.Image]
    jpeg_ssim: dict[str, float]
    jpeg_total: int
    # JPEG q80's SSIMULACRA2 per image, when the measure asks for it (seconds each).
    jpeg_ssimulacra2: dict[str, float] | None = None


def anchored(photos: list[Path], perceptual: bool = False) -> Anchor:
    images = {path.name: render(path, SIZE) for path in photos}
    references = {name: comparable(image).copy_memory() for name, image in images.items()}
    jpeg_ssim, jpeg_s2, jpeg_total = {}, {}, 0
    for name, image in images.items():
        data = encode(image, "jpeg", 80, "none", EncoderSettings())
        decoded = comparable(decode_result(data))
        jpeg_ssim[name] = ssim(references[name], decoded)
        if perceptual:
            jpeg_s2[name] = ssimulacra2(references[name], decoded)
        jpeg_total += len(data)
    return Anchor(images, references, jpeg_ssim, jpeg_total, jpeg_s2 if perceptual else None)


def bytes_at_jpeg_scores(
    anchor: Anchor, encoder: Callable[[pyvips.Image, int], bytes], qualities: range
) -> tuple[float, float | None, float]:
    """Total bytes of `encoder` at each image's JPEG q80 SSIM (read off its
    curve over `qualities`), the same at its SSIMULACRA2 when the anchor has
    it (else None), and the median seconds of one encode at q60."""
    by_ssim, by_s2, seconds = 0.0, 0.0, []
    for name, image in anchor.images.items():
        ssim_curve, s2_curve = [], []
        for quality in qualities:
            started = time.perf_counter()
            data = encoder(image, quality)
            if quality == 60:
                seconds.append(time.perf_counter() - started)
            # comparable() brings 10-bit (decoded as 16-bit) to 8-bit sRGB.
            decoded = comparable(decode_result(data))
            ssim_curve.append((ssim(anchor.references[name], decoded), len(data)))
            if anchor.jpeg_ssimulacra2 is not None:
                s2_curve.append((ssimulacra2(anchor.references[name], decoded), len(data)))
        by_ssim += bytes_at(ssim_curve, anchor.jpeg_ssim[name])
        if anchor.jpeg_ssimulacra2 is not None:
            by_s2 += bytes_at(s2_curve, anchor.jpeg_ssimulacra2[name])
    perceptual = by_s2 if anchor.jpeg_ssimulacra2 is not None else None
    return by_ssim, perceptual, statistics.median(seconds)


def against_jpeg(photos: list[Path], speeds: list[int]) -> None:
    anchor = anchored(photos)
    print(
        f"\n{len(anchor.images)} photographs at {SIZE} px; JPEG q80: {anchor.jpeg_total:,} bytes\n"
    )
    print(
        "| AVIF_SPEED | libaom effort | AVIF bytes at each image's JPEG q80 SSIM "
        "| fewer than JPEG q80 | median encode ms (q60) |"
    )
    print("|---:|---:|---:|---:|---:|")
    for speed in speeds:
        settings = EncoderSettings(avif_speed=speed)
        total, _, seconds = bytes_at_jpeg_scores(
            anchor,
            lambda image, quality, settings=settings: encode(
                image, "avif", quality, "none", settings
            ),
            AVIF_QUALITIES,
        )
        print(
            f"| {speed} | {9 - speed} | {total:,.0f} "
            f"| {100 * (1 - total / anchor.jpeg_total):.1f}% | {1000 * seconds:.0f} |",
            flush=True,
        )


def bit_depths(photos: list[Path], speed: int) -> None:
    """8-bit against 10-bit AV1 at one speed, the same way as against_jpeg."""
    anchor = anchored(photos)
    print(
        f"\n| bit depth (AVIF_SPEED {speed}) | fewer bytes than JPEG q80 at its SSIM "
        "| median encode ms (q60) |"
    )
    print("|---:|---:|---:|")
    for depth in (8, 10):
        total, _, seconds = bytes_at_jpeg_scores(
            anchor,
            lambda image, quality, depth=depth: image.heifsave_buffer(
                Q=quality, compression="av1", effort=9 - speed, bitdepth=depth, keep="none"
            ),
            range(20, 96, 5),
        )
        print(
            f"| {depth} | {100 * (1 - total / anchor.jpeg_total):.1f}% | {1000 * seconds:.0f} |",
            flush=True,
        )


def tunes(photos: list[Path], speed: int, names: list[str]) -> None:
    """libaom's tunings at one speed: bytes at JPEG q80's SSIM and at its SSIMULACRA2."""
    anchor = anchored(photos, perceptual=True)
    print(
        f"\n| tune (AVIF_SPEED {speed}) | fewer bytes than JPEG q80 at its SSIM "
        "| at its SSIMULACRA2 | median encode ms (q60) |"
    )
    print("|---|---:|---:|---:|")
    for tune in names:
        extra = {} if tune == "unset" else {"tune": tune}
        by_ssim, by_s2, seconds = bytes_at_jpeg_scores(
            anchor,
            lambda image, quality, extra=extra: image.heifsave_buffer(
                Q=quality, compression="av1", effort=9 - speed, keep="none", **extra
            ),
            range(30, 96, 10),
        )
        assert by_s2 is not None
        print(
            f"| {tune} | {100 * (1 - by_ssim / anchor.jpeg_total):.1f}% "
            f"| {100 * (1 - by_s2 / anchor.jpeg_total):.1f}% | {1000 * seconds:.0f} |",
            flush=True,
        )


def heic_presets(photos: list[Path], names: list[str]) -> None:
    """HEIC's x265 presets (`default` is libheif's, "slow", which the server
    uses), measured as in against_jpeg."""
    anchor = anchored(photos)
    print("\n| x265 preset | fewer bytes than JPEG q80 at its SSIM | median encode ms (q60) |")
    print("|---|---:|---:|")
    for name in names:
        preset = None if name == "default" else name
        total, _, seconds = bytes_at_jpeg_scores(
            anchor,
            lambda image, quality, preset=preset: heic_bytes(image, quality, preset=preset),
            range(20, 91, 10),
        )
        print(
            f"| {name} | {100 * (1 - total / anchor.jpeg_total):.1f}% | {1000 * seconds:.0f} |",
            flush=True,
        )


def probe_ratios(photos: list[Path], speeds: list[int]) -> None:
    print("\n| AVIF_SPEED | probe (speed 9) bytes / the speed's bytes, median | 300 px | 1200 px |")
    print("|---:|---:|---:|---:|")
    samples = {
        size: [
            (quality_sample(image), image.width * image.height)
            for image in (render(path, size) for path in photos)
        ]
        for size in (300, SIZE)
    }

    def sample_bytes(sample: pyvips.Image, pixels: int, quality: int, speed: int) -> int:
        settings = EncoderSettings(avif_speed=speed)
        return len(encode(sample, "avif", quality, "none", settings, as_pixels=pixels))

    for speed in speeds:
        by_size = {}
        for size, sized in samples.items():
            by_size[size] = [
                sample_bytes(sample, pixels, quality, 9)
                / sample_bytes(sample, pixels, quality, speed)
                for sample, pixels in sized
                for quality in PROBE_QUALITIES
            ]
        both = [ratio for ratios in by_size.values() for ratio in ratios]
        print(
            f"| {speed} | {statistics.median(both):.3f} | {statistics.median(by_size[300]):.3f} "
            f"| {statistics.median(by_size[SIZE]):.3f} |",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--speeds", default="9,8,7,6,5,4")
    parser.add_argument("--probes-only", action="store_true")
    parser.add_argument("--bit-depth", action="store_true", help="8- against 10-bit AV1 only")
    parser.add_argument("--tunes", help="libaom tunings only, e.g. unset,iq,ssim,psnr")
    parser.add_argument("--heic-presets", help="HEIC's x265 presets only, e.g. default,medium")
    args = parser.parse_args()
    configure_libvips()
    photos = sorted(p for p in args.corpus.iterdir() if p.suffix in (".jpg", ".png"))
    speeds = [int(speed) for speed in args.speeds.split(",")]
    if args.tunes:
        tunes(photos, EncoderSettings().avif_speed, args.tunes.split(","))
        return 0
    if args.heic_presets:
        heic_presets(photos, args.heic_presets.split(","))
        return 0
    if args.bit_depth:
        bit_depths(photos, EncoderSettings().avif_speed)
        return 0
    if not args.probes_only:
        against_jpeg(photos, speeds)
    probe_ratios(photos, speeds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
