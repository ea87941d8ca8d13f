"""quality:auto: its calibration, and the evidence on the corpus and on held-back images.

    .venv/bin/python bench/heldout.py        # once: the held-back images
    .venv/bin/python bench/auto_quality.py --corpus ../shared/corpus \\
        --heldout ~/.cache/pixelpipe-bench/heldout > auto-quality.md

Every image is fit in 1200x1200 by pixelpipe's own pipeline (as
`rs:fit:1200:1200` asks) and then, per format (JPEG, WebP, AVIF):

1. Curves: encoded at every quality in GRID; bytes and SSIM (luma, against
   the unencoded image: what /info reports).
2. Calibration, on the corpus only: the slope at which the rule, searching the
   curves of the corpus' samples as the server searches its probes (the same
   sample, probe encodes and SSIM; interpolated between grid qualities) and
   read on the images' own curves, gives a mean SSIM of
   JPEG q80's plus MARGIN; and the median quality it chose, the search's first
   probe. Printed beside the constants pixelpipe ships.
3. Evidence, corpus and held-back: the shipped rule run for real
   (`encode_result` with quality:auto, every probe a real encode), against
   (a) the fixed quality of the same format whose mean SSIM is the same, its
   total bytes read off the fixed-quality curve (interpolated between grid
   qualities), and (b) JPEG q80. SSIMULACRA2 of each result beside SSIM, and
   (c) JPEG at the answer's mean SSIMULACRA2 (JPEG measured at JPEG_S2_QUALITIES,
   its total bytes interpolated at that mean), the same comparison by a metric
   the rule does not optimise.

`--whole-search`: the search without its two shortcuts, to see what they
cost: every probe is the whole image encoded as the answer is (AVIF at the
configured speed, bytes unscaled), in the server's path and in the
calibration's simulation alike (about three full encodes per image).

`--sample-share N` and `--probe-speed S`: the sampled search with a larger
sample (1/N of the pixels instead of 1/SAMPLE_SHARE) or with AVIF probes at
libaom speed S instead of 9, their bytes scaled by the ratio of the shipped
factors (speed 9's to the configured speed's over speed 9's to S's). Both
change the server's search and the calibration's simulation alike; run
`--calibrate-only` first, then `--slopes avif=<its slope>`.

No network is used; two worker processes.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing import Pool
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import pyvips  # noqa: E402

from proxy.options import ParserConfig, parse_options, split_path  # noqa: E402
from proxy.pipeline.auto_quality import (  # noqa: E402
    AUTO_QUALITY_SLOPES,
    AUTO_QUALITY_STARTS,
    Probe,
    SlopeRule,
    choose_quality,
    probe_bytes_ratio,
    quality_sample,
)
from proxy.pipeline.encode import EncodeRequest, EncoderSettings, encode, encode_result  # noqa: E402
from proxy.pipeline.load import decode_result  # noqa: E402
from proxy.pipeline.metrics import comparable, distortion, probe_ssim, ssim  # noqa: E402
from proxy.pipeline.process import ProcessingLimits, _render  # noqa: E402
from proxy.settings import Settings, parse_auto_quality_slopes  # noqa: E402

FORMATS = ("jpeg", "webp", "avif")  # --formats chooses; JPEG is always measured (the target)
GRID = tuple(range(20, 96, 3))
JPEG_S2_QUALITIES = (70, 75, 80, 85, 90, 95)
SIZE = 1200
# Calibrated a little above JPEG q80's mean SSIM, so that images the rule has
# not seen still meet it (the held-back set is the check).
MARGIN = 0.0007
ENCODER = EncoderSettings.from_settings(Settings())
LIMITS = ProcessingLimits.from_settings(Settings())
WHOLE_SEARCH = False  # --whole-search


@dataclass(frozen=True, slots=True)
class Result:
    quality: int
    bytes: int
    ssim: float
    ssimulacra2: float = math.nan
    encodes: int = 1


# image name -> format -> quality -> Result
Curves = dict[str, dict[str, dict[int, Result]]]


def render(path: Path, fmt: str) -> tuple[pyvips.Image, str]:
    split = split_path(f"/unsafe/rs:fit:{SIZE}:{SIZE}/plain/local:///{path.name}@{fmt}")
    options = parse_options(
        split.option_segments, split.source_url, split.extension, ParserConfig()
    )
    rendered = _render(path.read_bytes(), options, LIMITS, None)
    return rendered.image.copy_memory(), rendered.keep


def measure_curve(
    job: tuple[Path, str],
) -> tuple[str, str, int, int, dict[int, Result], dict[int, Result]]:
    """The image's curve, and its sample's as quality:auto's probes measure it
    (the sample, probe encoder settings and bytes, numpy SSIM)."""
    path, fmt = job
    image, keep = render(path, fmt)
    pixels = image.width * image.height
    reference = comparable(image).copy_memory()
    sample = image if WHOLE_SEARCH else quality_sample(image)
    sample_reference = reference if WHOLE_SEARCH else comparable(sample).copy_memory()
    curve, sample_curve = {}, {}
    for quality in GRID:
        data = encode(image, fmt, quality, keep, ENCODER)
        decoded = comparable(decode_result(data))
        curve[quality] = Result(quality, len(data), ssim(reference, decoded))
        if WHOLE_SEARCH:  # the probe is the encode just measured
            size, probe_decoded = len(data), decoded
        else:
            probe = encode(sample, fmt, quality, "none", ENCODER, as_pixels=pixels, probe=True)
            size = round(len(probe) / probe_bytes_ratio(fmt, ENCODER.avif_speed))
            probe_decoded = comparable(decode_result(probe))
        measured = probe_ssim(sample_reference, probe_decoded)
        sample_curve[quality] = Result(quality, size, measured)
    sample_pixels = sample.width * sample.height
    return path.name, fmt, pixels, sample_pixels, curve, sample_curve


def evaluate(job: tuple[Path, str, int]) -> tuple[str, str, str, Result]:
    """One real result: quality:auto (quality 0) or a fixed quality, with SSIMULACRA2."""
    path, fmt, quality = job
    image, keep = render(path, fmt)
    request = EncodeRequest(format=fmt, quality=quality or 80, keep=keep, auto_quality=quality == 0)
    encoded = encode_result(image, request, ENCODER)
    decoded = decode_result(encoded.data)
    measured = distortion(image, decoded, perceptual=True)
    label = "auto" if quality == 0 else f"q{quality}"
    result = Result(
        encoded.quality, len(encoded.data), measured.ssim, measured.ssimulacra2 or math.nan
    )
    return path.name, fmt, label, replace(result, encodes=encoded.encodes)


def interpolated(curve: dict[int, Result], quality: int) -> Probe:
    """A grid curve read at any quality: log(bytes) and SSIM linear between grid points."""
    if quality in curve:
        point = curve[quality]
        return Probe(quality, point.bytes, point.ssim)
    below = max(q for q in curve if q < quality)
    above = min(q for q in curve if q > quality)
    t = (quality - below) / (above - below)
    low, high = curve[below], curve[above]
    size = math.exp(math.log(low.bytes) * (1 - t) + math.log(high.bytes) * t)
    return Probe(quality, round(size), low.ssim * (1 - t) + high.ssim * t)


def simulate(curves: Curves, pixels: dict[str, int], fmt: str, rule: SlopeRule) -> list[Probe]:
    """The rule's choice per image, searching the measured sample curves as the
    server searches its probes; each choice read on the image's own curve."""
    chosen = []
    for name, by_format in curves.items():
        sample = by_format[f"{fmt}:sample"]
        measure: Callable[[int], Probe] = lambda q, c=sample: interpolated(c, q)  # noqa: E731
        choice = choose_quality(measure, rule, pixels[f"{name}:sample"])
        chosen.append(interpolated(by_format[fmt], choice.quality))
    return chosen


def calibrate(curves: Curves, pixels: dict[str, int], fmt: str, target: float) -> tuple[float, int]:
    """The slope whose corpus mean SSIM is `target`, and the median quality chosen there.

    The start (first probe) shapes the search a little, so the two are settled
    together: a few rounds of slope-for-this-start, then start-for-this-slope.
    """
    if fmt in AUTO_QUALITY_SLOPES:
        rule = ENCODER.auto_quality_rule(fmt)
    else:  # a format not calibrated yet: any start, the rounds below settle it
        rule = replace(ENCODER.auto_quality_rule("jpeg"), slope=0.05, start=70)
    for _round in range(3):
        rule = replace(rule, slope=_slope_for(curves, pixels, fmt, rule, target))
        chosen = simulate(curves, pixels, fmt, rule)
        rule = replace(rule, start=round(statistics.median(p.quality for p in chosen)))
    return _slope_for(curves, pixels, fmt, rule, target), rule.start


def _slope_for(
    curves: Curves, pixels: dict[str, int], fmt: str, rule: SlopeRule, target: float
) -> float:
    """Bisection in log scale: a lower slope buys more SSIM."""
    low, high = 1e-3, 1.0
    for _step in range(30):
        middle = math.sqrt(low * high)
        chosen = simulate(curves, pixels, fmt, replace(rule, slope=middle))
        if statistics.mean(p.ssim for p in chosen) >= target:
            low = middle
        else:
            high = middle
    return low


def fixed_curve(curves: Curves, fmt: str) -> list[tuple[int, int, float]]:
    """(quality, total bytes, mean SSIM) of one fixed quality for every image."""
    return [
        (
            quality,
            sum(c[fmt][quality].bytes for c in curves.values()),
            statistics.mean(c[fmt][quality].ssim for c in curves.values()),
        )
        for quality in GRID
    ]


def fixed_at(curve: list[tuple[int, int, float]], mean: float) -> tuple[float, float]:
    """Total bytes and quality of the fixed quality whose mean SSIM is `mean` (interpolated)."""
    for (q0, t0, m0), (q1, t1, m1) in itertools.pairwise(curve):
        if m0 <= mean <= m1 or (mean < m0 and q0 == curve[0][0]):
            f = (mean - m0) / (m1 - m0) if m1 != m0 else 0.0
            return t0 + f * (t1 - t0), q0 + f * (q1 - q0)
    return math.nan, math.nan


def measure_set(
    directory: Path, pool: Pool, formats: tuple[str, ...] = FORMATS
) -> tuple[Curves, dict[str, int], list[Path]]:
    paths = [
        p for p in sorted(directory.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    ]
    curves: Curves = {}
    pixels: dict[str, int] = {}
    jobs = [(p, fmt) for p in paths for fmt in dict.fromkeys(("jpeg", *formats))]
    for name, fmt, count, sample_count, curve, sample in pool.imap_unordered(measure_curve, jobs):
        curves.setdefault(name, {})[fmt] = curve
        curves[name][f"{fmt}:sample"] = sample
        pixels[name] = count
        pixels[f"{name}:sample"] = sample_count
    return dict(sorted(curves.items())), pixels, paths


def evidence(
    label: str, paths: list[Path], curves: Curves, pool: Pool, formats: tuple[str, ...] = FORMATS
) -> tuple[list[str], list[str]]:
    jobs = [(p, fmt, 0) for p in paths for fmt in formats] + [
        (p, "jpeg", quality) for p in paths for quality in JPEG_S2_QUALITIES
    ]
    results: dict[tuple[str, str, str], Result] = {}
    for name, fmt, kind, result in pool.imap_unordered(evaluate, jobs):
        results[name, fmt, kind] = result
    names = [p.name for p in paths]
    jpeg80 = [results[n, "jpeg", "q80"] for n in names]
    jpeg_total = sum(r.bytes for r in jpeg80)
    jpeg_mean = statistics.mean(r.ssim for r in jpeg80)
    summary = [
        f"| {label} | JPEG q80 | {len(names)} | {jpeg_total:,} | {jpeg_mean:.4f} "
        f"| {statistics.mean(r.ssimulacra2 for r in jpeg80):.1f} | — | — | — | — | — | — | 1 |"
    ]
    # JPEG's (quality, total bytes, mean SSIMULACRA2) at a few fixed qualities.
    jpeg_s2_curve = [
        (
            quality,
            sum(results[n, "jpeg", f"q{quality}"].bytes for n in names),
            statistics.mean(results[n, "jpeg", f"q{quality}"].ssimulacra2 for n in names),
        )
        for quality in JPEG_S2_QUALITIES
    ]
    per_image = []
    for fmt in formats:
        auto = [results[n, fmt, "auto"] for n in names]
        total = sum(r.bytes for r in auto)
        mean = statistics.mean(r.ssim for r in auto)
        fixed_total, fixed_quality = fixed_at(fixed_curve(curves, fmt), mean)
        # JPEG's bytes at the answer's mean SSIM, read off JPEG's fixed-quality curve.
        jpeg_equal, jpeg_quality = fixed_at(fixed_curve(curves, "jpeg"), mean)
        mean_s2 = statistics.mean(r.ssimulacra2 for r in auto)
        jpeg_s2_equal, jpeg_s2_quality = fixed_at(jpeg_s2_curve, mean_s2)
        summary.append(
            f"| {label} | {fmt} q:auto | {len(names)} | {total:,} | {mean:.4f} "
            f"| {mean_s2:.1f} "
            f"| q{fixed_quality:.1f}: {fixed_total:,.0f} | {1 - total / fixed_total:+.1%} "
            f"| {1 - total / jpeg_total:+.1%} "
            f"| q{jpeg_quality:.1f}: {1 - total / jpeg_equal:+.2%} "
            f"| q{jpeg_s2_quality:.1f}: {1 - total / jpeg_s2_equal:+.2%} "
            f"| {'yes' if mean >= jpeg_mean else 'no'} "
            f"| {statistics.mean(r.encodes for r in auto):.2f} |"
        )
        for name, result in zip(names, auto, strict=True):
            base = results[name, "jpeg", "q80"]
            per_image.append(
                f"| {label} | {fmt} | {name} | {result.quality} | {result.bytes:,} "
                f"| {result.ssim:.4f} | {result.ssimulacra2:.1f} | {base.bytes:,} "
                f"| {base.ssim:.4f} | {base.ssimulacra2:.1f} | {result.encodes} |"
            )
    return summary, per_image


def vary_the_search(sample_share: int | None, probe_speed: int | None) -> None:
    """Change the server's sampled search (and this script's simulation of it)."""
    import proxy.pipeline.auto_quality as server_auto
    import proxy.pipeline.encode as server_encode

    global encode, probe_bytes_ratio
    if sample_share:
        server_auto.SAMPLE_SHARE = sample_share  # quality_sample reads it per call
    if not probe_speed:
        return
    shipped_encode, ratios = server_encode.encode, server_auto.AVIF_PROBE_BYTES_RATIO

    def probe_encode(image, fmt, quality, keep="none", settings=None, lossless=False, **kw):  # type: ignore[no-untyped-def]
        if kw.get("probe") and fmt == "avif":
            return image.heifsave_buffer(
                Q=quality, compression="av1", effort=9 - probe_speed, keep=keep
            )
        return shipped_encode(image, fmt, quality, keep, settings, lossless, **kw)

    def ratio(fmt: str, avif_speed: int) -> float:
        return ratios[avif_speed] / ratios[probe_speed] if fmt == "avif" else 1.0

    server_encode.encode = encode = probe_encode  # type: ignore[assignment]
    server_encode.probe_bytes_ratio = probe_bytes_ratio = ratio  # type: ignore[assignment]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--heldout", type=Path, required=True)
    parser.add_argument("--formats", default=",".join(FORMATS), help="e.g. jxl,heic")
    parser.add_argument(
        "--calibrate-only", action="store_true", help="curves and slopes, no evidence runs"
    )
    parser.add_argument(
        "--slopes",
        help="run the rule with these slopes instead, e.g. avif=0.056 (the setting's form)",
    )
    parser.add_argument("--sample-share", type=int, help="search 1/N of the pixels")
    parser.add_argument("--probe-speed", type=int, help="AVIF probes at this libaom speed")
    parser.add_argument(
        "--whole-search",
        action="store_true",
        help="probe the whole image as the answer is encoded (what the shortcuts cost)",
    )
    args = parser.parse_args()
    if args.whole_search:  # before the pool starts: its workers inherit the change
        global WHOLE_SEARCH
        WHOLE_SEARCH = True
        import proxy.pipeline.encode as server_encode

        # The server's search takes its sample from quality_sample and scales
        # AVIF probes by probe_bytes_ratio; an image that is its own sample is
        # searched with real encodes (choose_auto_quality).
        server_encode.quality_sample = lambda image: image  # type: ignore[assignment]
    if args.sample_share or args.probe_speed:  # before the pool starts, as above
        vary_the_search(args.sample_share, args.probe_speed)
    if args.slopes:  # before the pool starts: its workers inherit the module's ENCODER
        global ENCODER
        ENCODER = replace(
            ENCODER,
            auto_quality_slopes={
                **ENCODER.auto_quality_slopes,
                **parse_auto_quality_slopes(args.slopes),
            },
        )
    formats = tuple(args.formats.split(","))
    started = time.perf_counter()
    with Pool(2) as pool:
        corpus_curves, corpus_pixels, corpus_paths = measure_set(args.corpus, pool, formats)
        held_curves, _held_pixels, held_paths = (
            ({}, {}, []) if args.calibrate_only else measure_set(args.heldout, pool, formats)
        )
        target_base = statistics.mean(c["jpeg"][80].ssim for c in corpus_curves.values())
        calibration = [
            "| format | calibrated slope | calibrated start | shipped slope | shipped start |",
            "|---|---|---|---|---|",
        ]
        for fmt in formats:
            slope, start = calibrate(corpus_curves, corpus_pixels, fmt, target_base + MARGIN)
            calibration.append(
                f"| {fmt} | {slope:.4f} | {start} | {AUTO_QUALITY_SLOPES.get(fmt, '—')} "
                f"| {AUTO_QUALITY_STARTS.get(fmt, '—')} |"
            )
        if args.calibrate_only:
            print("\n".join(calibration))
            return 0
        corpus_summary, corpus_rows = evidence("corpus", corpus_paths, corpus_curves, pool, formats)
        held_summary, held_rows = evidence("held-back", held_paths, held_curves, pool, formats)
    elapsed = time.perf_counter() - started
    out = [
        f"<!-- generated by: .venv/bin/python bench/auto_quality.py {' '.join(sys.argv[1:])} "
        f"({len(corpus_paths)} + {len(held_paths)} images, "
        f"{elapsed:.0f} s) -->",
        "",
        f"Calibration target: JPEG q80's mean SSIM on the corpus ({target_base:.4f}) + {MARGIN}.",
        "",
        *calibration,
        "",
        "| set | result | images | total bytes | mean SSIM | mean SSIMULACRA2 "
        "| same-format fixed quality at that mean SSIM: total bytes | saved against it "
        "| saved against JPEG q80 | saved against JPEG at that mean SSIM "
        "| saved against JPEG at that mean SSIMULACRA2 "
        "| mean SSIM >= JPEG q80's | encodes per image |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *corpus_summary,
        *held_summary,
        "",
        "<details><summary>per image</summary>",
        "",
        "| set | format | image | auto quality | auto bytes | auto SSIM | auto SSIMULACRA2 "
        "| JPEG q80 bytes | JPEG q80 SSIM | JPEG q80 SSIMULACRA2 | encodes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *corpus_rows,
        *held_rows,
        "",
        "</details>",
    ]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
