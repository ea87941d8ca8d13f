"""Animations: what a request over many frames costs, in process.

    .venv/bin/python bench/animation.py --corpus ../shared/corpus [--repeats 5]

The animation: 60 frames of 400x250 panning across a corpus photograph
(ColorfulCups.jpg, whose sRGB profile the frames keep), written by libvips
as animated WebP (with the profile and without it) and as GIF; and 60
frames of 400x250 with discs of 16 colours moving over a field, as a GIF
of 16 colours (4 bits), as drawings and screen recordings are. Per source
and options: median ms of `process_image` (libvips' operation cache off, as
the server runs) and the bytes of the answer. Run it in a worktree of an
earlier commit and in this one, one after the other, to compare
(BENCHMARKS.md, "Animations").

`--gif-palette`: GIF encoding with one palette for all frames against
libvips' palette per frame (palette_trial; measured, not shipped).

`--memory`: instead, each job's peak memory (RSS rise, in a fresh process)
against the footprint admission reserves for it, over frames panning across
the same photograph: 25 and 100 frames of 400x400 and 25 of 800x600 as
animated WebP, and 100 of 400x400 as GIF (at most 16 MP in all, under
MAX_SRC_RESOLUTION).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyvips  # noqa: E402

from bench.webp_lossless import median_ms  # noqa: E402
from proxy.app import configure_libvips  # noqa: E402
from proxy.options import ParserConfig, parse_options  # noqa: E402
from proxy.pipeline.process import ProcessingLimits, process_image  # noqa: E402
from proxy.settings import Settings  # noqa: E402

FRAMES = 60
OPTIONS = (
    "rs:fit:100:100/f:webp",
    "rs:fit:200:200/f:webp",
    "rs:fill:100:100/g:sm/f:webp",
    "rs:fit:200:200/f:gif",
)


def animations(photo: Path) -> dict[str, bytes]:
    picture = pyvips.Image.new_from_file(str(photo)).thumbnail_image(400)
    frames = [
        picture.embed(3 * i % 50 - 25, 0, picture.width, picture.height, extend="copy")
        for i in range(FRAMES)
    ]
    strip = pyvips.Image.arrayjoin(frames, across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", picture.height)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [40] * FRAMES)
    strip.set_type(pyvips.GValue.gint_type, "loop", 0)
    plain = strip.copy()
    plain.remove("icc-profile-data")
    return {
        "WebP with a profile": strip.webpsave_buffer(Q=90),
        "WebP": plain.webpsave_buffer(Q=90),
        "GIF": strip.gifsave_buffer(),
        "GIF of 16 colours": drawing(),
    }


def drawing() -> bytes:
    palette = [[16 * i, 255 - 16 * i, 40 * i % 256] for i in range(16)]
    frames = []
    for index in range(FRAMES):
        frame = pyvips.Image.black(400, 250, bands=3).copy(interpretation="srgb")
        for disc in range(1, 16):
            x, y = (disc * 37 + index * 5) % 340 + 30, (disc * 23 + index * 3) % 190 + 30
            frame = frame.draw_circle(palette[disc], x, y, 30, fill=True)
        frames.append(frame)
    strip = pyvips.Image.arrayjoin(frames, across=1).copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", 250)
    strip.set_type(pyvips.GValue.array_int_type, "delay", [40] * FRAMES)
    return strip.gifsave_buffer(bitdepth=4)


MEMORY_JOBS = (
    "rs:fit:400:400/f:webp",
    "rs:fill:300:300/g:sm/f:webp",
    "bl:10/f:webp",
    "sh:5/f:webp",
    "mc:0.5:ff0000/f:webp",
    "sa:1.5/br:10/f:webp",
    "pd:50/wmt:aGVsbG8/f:webp",
    "fit-in/300x300/filters:fill(blur)",
    "fit-in/300x300/filters:equalize():format(webp)",
    "rs:fit:200:200/f:gif",
    "rs:fit:400:400/f:gif",
    "rs:fit:100:100/f:webp",
)
# (frame width, height, frames, container)
MEMORY_SOURCES = ((400, 400, 25, "webp"), (400, 400, 100, "webp"), (800, 600, 25, "webp"),
                  (400, 400, 100, "gif"))  # fmt: skip


def memory(photo: Path) -> None:
    from bench.thumbor_filters import measure_memories

    print("| source | options | peak RSS rise MB | footprint estimate MB | peak / estimate |")
    print("|---|---|---:|---:|---:|")
    for width, height, count, container in MEMORY_SOURCES:
        picture = pyvips.Image.new_from_file(str(photo)).thumbnail_image(
            width, height=height, crop="centre"
        )
        frames = [
            picture.embed(3 * i % 50 - 25, 0, width, height, extend="copy") for i in range(count)
        ]
        strip = pyvips.Image.arrayjoin(frames, across=1).copy()
        strip.set_type(pyvips.GValue.gint_type, "page-height", height)
        strip.set_type(pyvips.GValue.array_int_type, "delay", [40] * count)
        data = strip.webpsave_buffer(Q=90) if container == "webp" else strip.gifsave_buffer()
        with tempfile.TemporaryDirectory() as scratch:
            source = Path(scratch) / f"animation.{container}"
            source.write_bytes(data)
            found = measure_memories(source, [(job, None) for job in MEMORY_JOBS])
        name = f"{container.upper()}, {count} x {width}x{height}"
        for job, measured in zip(MEMORY_JOBS, found, strict=True):
            peak, estimate = measured["measured"], measured["estimate"]
            ratio = peak / estimate
            print(f"| {name} | `{job}` | {peak / 1e6:.0f} | {estimate / 1e6:.0f} | {ratio:.2f} |")


# Six corpus photographs, ten frames of each: an animation with scene cuts.
SCENES = ("ColorfulCups.jpg", "Autumn.jpg", "DarkestHour.jpg", "EveningGlow.jpg",
          "FallenLeaf.jpg", "summer_1am.jpg")  # fmt: skip


def palette_trial(corpus: Path, repeats: int) -> None:
    """GIF encoding with one palette for the whole animation, measured, not
    shipped: libvips' saver quantises every frame (libimagequant at effort 7);
    here one palette is quantised from a mosaic of every frame (about 250,000
    pixels), attached as "gif-palette", and every frame only dithered to it
    (`gifsave(reuse=True)`). Median ms, bytes and the mean error per band
    against the frames, for 60 frames of 200x125: one pan over one
    photograph, and six photographs of ten frames each."""

    def strip_of(names: tuple[str, ...], per: int) -> pyvips.Image:
        frames = []
        for name in names:
            picture = pyvips.Image.new_from_file(str(corpus / name))
            picture = picture.thumbnail_image(260, height=125, crop="centre")
            frames += [picture.crop(i, 0, 200, 125) for i in range(per)]  # a pixel a frame
        strip = pyvips.Image.arrayjoin(frames, across=1).copy_memory()
        strip.set_type(pyvips.GValue.gint_type, "page-height", 125)
        return strip

    def one_palette(strip: pyvips.Image) -> bytes:
        count = strip.height // 125
        scale = min(1.0, (250_000 / (strip.width * strip.height)) ** 0.5)
        tiles = [strip.crop(0, i * 125, strip.width, 125).resize(scale) for i in range(count)]
        mosaic = pyvips.Image.arrayjoin(tiles, across=8).copy()
        mosaic.remove("page-height")
        palette = pyvips.Image.new_from_buffer(mosaic.gifsave_buffer(), "").get("gif-palette")
        tagged = strip.copy()
        tagged.set_type(pyvips.GValue.array_int_type, "gif-palette", palette)
        return tagged.gifsave_buffer(reuse=True)  # type: ignore[no-any-return]

    def error(data: bytes, strip: pyvips.Image) -> float:
        back = pyvips.Image.new_from_buffer(data, "", n=-1)[:3].cast("float")
        return float((back - strip[:3].cast("float")).abs().avg())

    print("| animation | palettes | median ms | bytes | mean error per band |")
    print("|---|---|---:|---:|---:|")
    for label, names, per in (("one pan", ("ColorfulCups.jpg",), 60), ("six scenes", SCENES, 10)):
        strip = strip_of(names, per)
        for way, save in (("per frame (libvips)", lambda s: s.gifsave_buffer()),
                          ("one, from a mosaic", one_palette)):  # fmt: skip
            ms, data = median_ms(lambda sv=save, st=strip: sv(st), repeats)
            print(f"| {label} | {way} | {ms:.0f} | {len(data):,} | {error(data, strip):.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--gif-palette", action="store_true")
    args = parser.parse_args()
    if args.memory:
        memory(args.corpus / "ColorfulCups.jpg")
        return 0
    if args.gif_palette:
        pyvips.cache_set_max(0)
        palette_trial(args.corpus, args.repeats)
        return 0
    configure_libvips()
    limits = ProcessingLimits.from_settings(Settings())
    print("| source | options | median ms | bytes |")
    print("|---|---|---:|---:|")
    for name, data in animations(args.corpus / "ColorfulCups.jpg").items():
        for text in OPTIONS:
            options = parse_options(tuple(text.split("/")), "http://x/a", None, ParserConfig())
            run = lambda o=options, d=data: process_image(d, o, limits)  # noqa: E731
            ms, result = median_ms(run, args.repeats)
            print(f"| {name} | `{text}` | {ms:.0f} | {len(result.data):,} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
