"""Source formats beyond libvips': decoder candidates, decode cost, cold thumbnails, memory.

    .venv/bin/python bench/formats.py --corpus ../shared/corpus            # pixelpipe
    /tmp/cand/bin/python bench/formats.py --corpus ../shared/corpus --candidates

The test photo is the corpus' 12.2 MP camera JPEG, re-encoded by Debian's
independent tools (heif-enc q80, cjxl -d 1, ImageMagick BMP3), so every format
holds the same picture. `--candidates` times the decoders considered for each
format (whichever of pillow-heif, pyheif, pylibjxl, imagecodecs,
pillow-jxl-plugin and Pillow are installed in that interpreter): a full decode
and a header-only read, median of 5. The default run measures pixelpipe
itself, in process: decode only (ms per megapixel), and a cold
`rs:fill:300:300` JPEG from each format (median of 5, no cache), beside the
same from the JPEG; then each format's peak memory against the footprint
estimate, one fresh process per job (as bench/job_memory.py).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PHOTO = "Camera-exif-rot6.jpg"
IMAGEMAGICK = "/usr/bin/convert"


def make_sources(corpus: Path, work: Path) -> dict[str, Path]:
    import pyvips

    png = work / "photo.png"
    pyvips.Image.new_from_file(str(corpus / PHOTO)).pngsave(str(png), compression=1)
    made = {"jpeg": corpus / PHOTO, "png": png}
    for fmt, command in {
        "heic": ["heif-enc", "-q", "80", str(png), "-o", str(work / "photo.heic")],
        "jxl": ["cjxl", str(png), str(work / "photo.jxl"), "-d", "1"],
        "bmp": [IMAGEMAGICK, str(png), "BMP3:" + str(work / "photo.bmp")],
    }.items():
        subprocess.run(command, check=True, capture_output=True)
        made[fmt] = work / f"photo.{fmt}"
    return made


def median_ms(work: Callable[[], object], rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def candidates(sources: dict[str, Path]) -> None:
    heic, jxl, bmp = (sources[fmt].read_bytes() for fmt in ("heic", "jxl", "bmp"))
    rows: list[tuple[str, str, Callable[[], object], Callable[[], object] | None]] = []
    try:
        import numpy as np
        import pillow_heif

        rows.append(
            (
                "heic",
                "pillow-heif",
                lambda: np.asarray(pillow_heif.open_heif(heic)),
                lambda: pillow_heif.open_heif(heic).size,
            )
        )
    except ImportError:
        pass
    try:
        import pyheif

        rows.append(("heic", "pyheif", lambda: pyheif.read(heic).data, None))
    except ImportError:
        pass
    try:
        import pylibjxl

        rows.append(("jxl", "pylibjxl", lambda: pylibjxl.decode(jxl), lambda: pylibjxl.probe(jxl)))
    except ImportError:
        pass
    try:
        import imagecodecs

        rows.append(("jxl", "imagecodecs", lambda: imagecodecs.jpegxl_decode(jxl), None))
    except ImportError:
        pass
    try:
        import pillow_jxl  # noqa: F401 - registers the plugin
        from PIL import Image

        def pillow_jxl_decode() -> object:
            opened = Image.open(io.BytesIO(jxl))
            opened.load()
            return opened.size

        rows.append(
            (
                "jxl",
                "pillow-jxl-plugin",
                pillow_jxl_decode,
                lambda: Image.open(io.BytesIO(jxl)).size,
            )
        )
    except ImportError:
        pass
    try:
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = None

        def pillow_bmp() -> object:
            opened = Image.open(io.BytesIO(bmp))
            opened.load()
            return opened.size

        rows.append(("bmp", "Pillow", pillow_bmp, lambda: Image.open(io.BytesIO(bmp)).size))
    except ImportError:
        pass
    print("| format | decoder | full decode ms (12.2 MP) | header-only ms |")
    print("|---|---|---:|---:|")
    for fmt, name, decode, header in rows:
        head = f"{median_ms(header, 20):.2f}" if header else "n/a (decodes)"
        print(f"| {fmt} | {name} | {median_ms(decode):.0f} | {head} |")


def pixelpipe(sources: dict[str, Path]) -> None:
    sys.path.insert(0, str(ROOT))
    from proxy.app import configure_libvips
    from proxy.options import ParserConfig, parse_options
    from proxy.pipeline.encode import EncoderSettings
    from proxy.pipeline.load import load_image, read_header
    from proxy.pipeline.process import ProcessingLimits, process_image
    from proxy.settings import Settings

    configure_libvips()
    settings = Settings(max_src_resolution=50)
    limits = ProcessingLimits.from_settings(settings)
    encoder = EncoderSettings.from_settings(settings)
    thumb = parse_options(("rs:fill:300:300",), "x", "jpg", ParserConfig())
    print("| source | bytes | decode ms | decode ms/MP | cold 300x300 JPEG ms | vs JPEG source |")
    print("|---|---:|---:|---:|---:|---:|")
    baseline = 0.0
    for fmt in ("jpeg", "heic", "jxl", "bmp", "png"):
        data = sources[fmt].read_bytes()
        header = read_header(data, 0)
        megapixels = header.width * header.height / 1e6
        decode = median_ms(lambda data=data, header=header: load_image(data, header, 1.0).avg())
        cold = median_ms(lambda data=data: process_image(data, thumb, limits, None, encoder))
        baseline = baseline or cold
        print(
            f"| {fmt} | {len(data)} | {decode:.0f} | {decode / megapixels:.1f} "
            f"| {cold:.0f} | {cold / baseline:.2f}x |"
        )


MEMORY_JOBS = [
    ("heic", "rs:fill:300:300/f:jpg"),
    ("heic", "rs:fit:1200:0/f:webp"),
    ("jxl", "rs:fill:300:300/f:jpg"),
    ("jxl", "rs:fit:1200:0/f:avif"),
    ("bmp", "rs:fill:300:300/f:jpg"),
    ("jpeg", "rs:fit:1200:0/f:jxl"),
    ("jpeg", "rs:fit:1200:0/f:heic"),
]


def memory(sources: dict[str, Path]) -> None:
    from bench.job_memory import CHILD

    print("| source | options | measured peak rise MB | estimate MB | estimate / measured |")
    print("|---|---|---:|---:|---:|")
    for fmt, options in MEMORY_JOBS:
        child = CHILD.replace("Settings()", "Settings(max_src_resolution=50)")
        out = subprocess.run(
            [sys.executable, "-c", child, str(ROOT), str(sources[fmt]), options],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        ratio = result["estimate"] / max(result["measured"], 1)
        print(
            f"| {fmt} | {options} | {result['measured'] / 2**20:.0f} "
            f"| {result['estimate'] / 2**20:.0f} | {ratio:.2f} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True, help="the shared photo corpus")
    parser.add_argument("--candidates", action="store_true", help="compare decoder libraries")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sources = make_sources(args.corpus, Path(tmp))
        if args.candidates:
            candidates(sources)
            return 0
        # Memory first: a child's peak RSS starts at its parent's size when it
        # forks (Linux keeps the high-water mark across exec), so the parent must
        # still be small.
        sys.path.insert(0, str(ROOT))
        memory(sources)
        print()
        pixelpipe(sources)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
