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
estimate, one fresh process per job (as bench/job_memory.py); and bombs (36 MP
of one colour in a small HEIC and JPEG XL, a 20000x20000 pt PDF page, an 8K
video): the answer, how long it took and how far the peak RSS rose.
"""

from __future__ import annotations

import argparse
import io
import json
import os
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
    png = work / "photo.png"
    # In a child: this process must stay small (see main).
    subprocess.run(
        [sys.executable, "-c", "import pyvips, sys; "
         "pyvips.Image.new_from_file(sys.argv[1]).pngsave(sys.argv[2], compression=1)",
         str(corpus / PHOTO), str(png)],
        check=True,
    )  # fmt: skip
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
    from bench.job_memory import CHILD, measure_job

    print("| source | options | measured peak rise MB | estimate MB | estimate / measured |")
    print("|---|---|---:|---:|---:|")
    # The child reads the environment as the server does: the corpus' largest
    # sources pass MAX_SRC_RESOLUTION's default.
    os.environ.setdefault("PIXELPIPE_MAX_SRC_RESOLUTION", "50")
    for fmt, options in MEMORY_JOBS:
        result = measure_job(sources[fmt], options, CHILD)
        ratio = result["estimate"] / max(result["measured"], 1)
        print(
            f"| {fmt} | {options} | {result['measured'] / 2**20:.0f} "
            f"| {result['estimate'] / 2**20:.0f} | {ratio:.2f} |"
        )


BOMB_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from proxy.errors import ProxyError
from proxy.options import ParserConfig, parse_options
from proxy.pipeline.process import ProcessingLimits, process_image
from proxy.settings import Settings

settings = Settings(enable_pdf=True, enable_psd=True, enable_raw=True, enable_video_thumbnails=True)
limits = ProcessingLimits.from_settings(settings)
options = parse_options(("rs:fit:300:300",), "x", "jpg", ParserConfig())
data = open(sys.argv[2], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
started = time.perf_counter()
try:
    process_image(data, options, limits)
    answer = "200"
except ProxyError as error:
    answer = f"{error.status} {error.reason}"
elapsed = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"answer": answer, "ms": elapsed * 1000, "rise": after - before}))
"""


def bombs(work: Path) -> None:
    """Small files that claim many pixels: refused from the header, before any decoding."""
    sys.path.insert(0, str(ROOT))
    from tests.test_formats_pro import pdf

    flat = work / "flat.png"
    # Made in a child: a child's peak RSS starts at its parent's (see main), so
    # the parent must not hold 36 MP itself.
    subprocess.run(
        [sys.executable, "-c", "import pyvips, sys; pyvips.Image.black(6000, 6000).add(90)"
         ".cast('uchar').pngsave(sys.argv[1], compression=9)", str(flat)],
        check=True,
    )  # fmt: skip
    made = {"36 MP HEIC": work / "bomb.heic", "36 MP JPEG XL": work / "bomb.jxl"}
    subprocess.run(["heif-enc", "-q", "30", str(flat), "-o", str(made["36 MP HEIC"])],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["cjxl", str(flat), str(made["36 MP JPEG XL"]), "-d", "4"],
                   check=True, capture_output=True)  # fmt: skip
    made["20000x20000 pt PDF"] = work / "bomb.pdf"
    made["20000x20000 pt PDF"].write_bytes(pdf([(20000, 20000, (200, 0, 0))]))
    made["8K H.264"] = work / "bomb.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=red:s=7680x4320:d=0.2:r=10",
         "-c:v", "libx264", "-preset", "ultrafast", str(made["8K H.264"])],
        check=True,
    )  # fmt: skip
    print("| bomb | file bytes | answer | ms to answer | peak RSS rise MB |")
    print("|---|---:|---|---:|---:|")
    for label, path in made.items():
        out = subprocess.run(
            [sys.executable, "-c", BOMB_CHILD, str(ROOT), str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"| {label} | {path.stat().st_size:,} | {result['answer']} | {result['ms']:.1f} "
            f"| {result['rise'] / 2**20:.1f} |"
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
        bombs(Path(tmp))
        print()
        pixelpipe(sources)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
