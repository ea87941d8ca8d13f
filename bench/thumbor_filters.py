"""What each of thumbor's pixel filters and imgproxy Pro's adjustments costs on a
1200 px image, and its memory.

    .venv/bin/python bench/thumbor_filters.py [--corpus ../shared/corpus] [--repeat 7]

Time: the filter alone (`proxy.pipeline.thumbor_filters`) over a 1200 px wide
RGB image held in memory, computed to memory; median of `--repeat` runs on
one libvips thread and on the default, against a copy of the same image
(the floor: brightness(0), one read and write of every pixel). Memory: the whole job
(`1200x0/filters:NAME(...)` from a 5120x2880 JPEG) in a fresh process, its
peak RSS rise (VmHWM after resetting it, less VmRSS before) against the
footprint estimate admission control reserves.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.job_memory import CHILD_PRELUDE, run_child  # noqa: E402

FILTERS = [
    "brightness(20)",
    "contrast(30)",
    "rgb(10,-20,30)",
    "grayscale()",
    "saturation(1.6)",
    "colorize(40,10,70,ff8000)",
    "equalize()",
    "curve([(0,0),(128,200),(255,255)],[(0,0),(255,255)],[(0,0),(255,255)],[(0,40)])",
    "convolution(1;2;1;2;4;2;1;2;1,3,true)",
    "convolution(" + ";".join(["1"] * 225) + ",15,true)",
    "noise(40,7)",
    "frame(origin/patch.png)",
    "red_eye()",
    "blur(10)",
    "blur(150)",
    "sharpen(2,1,false)",
    "sharpen(2,1,true)",
]

CHILD = (
    CHILD_PRELUDE
    + r"""
# What a server loads once (OpenCV for faces and eyes) is loaded before measuring.
warm = parse_thumbor("32x0/filters:equalize():noise(5):red_eye()/origin/image", config).options
process_image(tiny, warm, limits, None, encoder)
data = open(sys.argv[2], "rb").read()
found = []
for path, frame_path in json.loads(sys.argv[3]):
    if "filters:" in path:
        options = parse_thumbor(path + "/origin/image", config).options
    else:  # imgproxy's option segments
        options = parse_options(tuple(path.split("/")), "http://origin/image", None, config)
    frame = open(frame_path, "rb").read() if frame_path else None
    before = reset_peak()
    for _ in range(2):
        process_image(data, options, limits, None, encoder, frame_data=frame)
    found.append({"measured": status("VmHWM:") - before,
                  "estimate": job_footprint(data, options, limits)})
print(json.dumps(found))
"""
)


def nine_patch(size: int = 32):  # type: ignore[no-untyped-def]
    """An Android-style nine-patch drawn here pixel by pixel (RGBA).

    Inside the 1-pixel marker border: an opaque red ring 6 pixels wide, a
    half-transparent blue band, a clear middle. Markers: the middle 8 rows and
    columns stretch (left and top edges); the content sits 7 pixels in from
    left and top and 5 from right and bottom (right and bottom edges).
    """
    import numpy as np
    import pyvips

    inner = size - 2
    pixels = np.zeros((size, size, 4), dtype=np.uint8)
    y, x = np.mgrid[0:inner, 0:inner]
    ring = np.minimum(np.minimum(x, y), np.minimum(inner - 1 - x, inner - 1 - y))
    pixels[1:-1, 1:-1][ring < 6] = (200, 30, 30, 255)
    pixels[1:-1, 1:-1][(ring >= 6) & (ring < 10)] = (20, 40, 220, 128)
    black = (0, 0, 0, 255)
    middle = slice(size // 2 - 4, size // 2 + 4)
    pixels[0, middle] = black  # stretchy columns
    pixels[middle, 0] = black  # stretchy rows
    pixels[size - 1, 8 : size - 6] = black  # content from x = 8 to size - 7: padding 7 and 5
    pixels[8 : size - 6, size - 1] = black
    return pyvips.Image.new_from_array(pixels, interpretation="srgb")


# imgproxy Pro's adjustments (proxy.pipeline.effects), timed and measured the same way.
EFFECTS = [
    "br:40",
    "co:1.5",
    "sa:2",
    "mc:1:ff0000",
    "dt:1:0000ff:ffff00",
    "col:0.5:ff0000",
    "gr:1:00ff00:45",
    "ush:always",
    "a:10:1.2:1.3/mc:0.5/dt:0.5/col:0.3/gr:0.8/ush:always",
]


def measure_memories(source: Path, jobs: list[tuple[str, Path | None]]) -> list[dict[str, float]]:
    """{"measured": peak RSS rise, "estimate": footprint} of each thumbor or imgproxy job
    (a path, and the nine-patch file a frame() in it draws), one after another in one
    fresh process: freed memory trimmed and the peak reset before each."""
    plan = json.dumps([(path, str(frame) if frame else None) for path, frame in jobs])
    return run_child(CHILD, str(source), plan)  # type: ignore[no-any-return]


def measure_memory(source: Path, path: str, frame: Path | None = None) -> dict[str, float]:
    return measure_memories(source, [(path, frame)])[0]


def filter_times(image, patch, repeat: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Median ms of each filter over the in-memory image (and of one plain pass)."""
    from proxy.options import ParserConfig
    from proxy.options.thumbor import parse_thumbor
    from proxy.pipeline.thumbor_filters import ADJUSTMENTS, frame

    config = ParserConfig()
    times = {}
    for text in ["one pass", *FILTERS]:
        if text == "one pass":
            steps: tuple = (("brightness", (0,)),)
        else:
            steps = parse_thumbor(f"filters:{text}/origin/image", config).options.adjustments
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            result = image
            for name, args in steps:
                if name == "frame":
                    result = frame(result, patch)
                else:
                    result = ADJUSTMENTS[name](result, args)
            result.copy_memory()
            runs.append(1000 * (time.perf_counter() - started))
        times[text] = statistics.median(runs)
    return times


def effect_times(image, repeat: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Median ms of each imgproxy Pro adjustment over the in-memory image."""
    from proxy.options import ParserConfig, parse_options
    from proxy.pipeline.effects import apply_effects, unsharp_mask

    times = {}
    for text in EFFECTS:
        options = parse_options(tuple(text.split("/")), "http://origin/image", None, ParserConfig())
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            result = image
            if options.unsharp.mode.value == "always":
                result = unsharp_mask(result, options.unsharp)
            apply_effects(result, options.effects).copy_memory()
            runs.append(1000 * (time.perf_counter() - started))
        times[text] = statistics.median(runs)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--only", help="filters whose text starts with one of these (comma-separated); no effects"
    )
    args = parser.parse_args()
    if args.only:
        FILTERS[:] = [f for f in FILTERS if f.startswith(tuple(args.only.split(",")))]
    import pyvips

    from bench.run import photo_like
    from proxy.app import configure_libvips

    configure_libvips()
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.jpg"
        corpus = sorted(args.corpus.glob("*.jpg")) if args.corpus else []
        picture = next(
            (p for p in corpus if pyvips.Image.new_from_file(str(p)).width >= 5000), None
        )
        if picture is not None:
            big.write_bytes(picture.read_bytes())
        else:
            photo_like(5120, 2880, 1).write_to_file(str(big), Q=90)
        image = pyvips.Image.thumbnail(str(big), 1200).copy_memory()
        patch_file = Path(tmp) / "patch.png"
        nine_patch().write_to_file(str(patch_file))
        patch = pyvips.Image.new_from_file(str(patch_file)).copy_memory()
        threads = pyvips.concurrency_get()
        pyvips.concurrency_set(1)
        one = filter_times(image, patch, args.repeat)
        pyvips.concurrency_set(threads)
        default = filter_times(image, patch, args.repeat)
        named = big.name if picture is None else picture.name
        print(f"image {image.width}x{image.height}, source {named}")
        print(f"| filter | ms, 1 thread | ms, {threads} threads | peak rise MB | estimate MB |")
        print("|---|---:|---:|---:|---:|")
        for text in ["one pass", *FILTERS]:
            memory = "| |"
            if text != "one pass":
                drawn = patch_file if text.startswith("frame") else None
                found = measure_memory(big, f"1200x0/filters:{text}", drawn)
                memory = f"| {found['measured'] / 2**20:.0f} | {found['estimate'] / 2**20:.0f} |"
            shown = text if len(text) < 48 else text[:44] + "...)"
            print(f"| `{shown}` | {one[text]:.1f} | {default[text]:.1f} {memory}")
        if args.only:
            return 0
        print()
        columns = f"ms, 1 thread | ms, {threads} threads | peak rise MB | estimate MB"
        print(f"| imgproxy option | {columns} |")
        print("|---|---:|---:|---:|---:|")
        pyvips.concurrency_set(1)
        one = effect_times(image, args.repeat)
        pyvips.concurrency_set(threads)
        default = effect_times(image, args.repeat)
        for text in EFFECTS:
            found = measure_memory(big, f"rs:fit:1200:0/{text}")
            memory = f"| {found['measured'] / 2**20:.0f} | {found['estimate'] / 2**20:.0f} |"
            print(f"| `{text}` | {one[text]:.1f} | {default[text]:.1f} {memory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
