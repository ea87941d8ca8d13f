"""Mutated sources of every format read against a running server.

    .venv/bin/python bench/fuzz_formats.py --minutes 10 [--seed N] [--only jxl,mp4]

Valid files (JPEG, PNG, WebP, GIF, TIFF, AVIF, HEIC, JPEG XL, BMP, ICO, PSD,
PDF, SVG, MP4, WebM) are made once by Debian's independent encoders
(ImageMagick, cjpeg, heif-enc, cjxl, FFmpeg; PDFs and SVG written by hand),
then mutated at random: bytes flipped, runs zeroed or set to 0xFF, the file
cut short, header fields (sizes, counts, offsets) overwritten with extreme
values, chunks duplicated. Each mutant is served by a loopback origin and
asked of `pixelpipe serve` (2 workers, every optional format on, TIMEOUT
10 s) with a few option sets, two clients at a time, until the time is up.
Reported: answers by status, the slowest answer, and anything that breaks
the rules: a 5xx other than 503 (overload, deadline), a refusal that is not
one line of text, an image answer that does not decode (by libvips, or by
ImageMagick or djxl where the wheel's libvips has no loader), an answer slower
than TIMEOUT + 5 s, a worker that died, a server that stopped answering
/health. Mutants that broke a rule are kept in bench/fuzz-findings/ to
become regression tests.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import signed  # noqa: E402
from tests.ports import free_port  # noqa: E402
from tests.servers import Origin  # noqa: E402
from tests.soak import pixelpipe_process, worker_pids  # noqa: E402
from tests.test_cli import PIXELPIPE, serve_env  # noqa: E402
from tests.test_formats_pro import pdf  # noqa: E402

IMAGEMAGICK = "/usr/bin/convert"
OPTIONS = [
    "/w:100/plain/{}@png",
    "/rs:fill:64:64/plain/{}@jpg",
    "/plain/{}@webp",
    "/raw:1/plain/{}",
    # The paths that look at the pixels before encoding: face detection and
    # the attention crop, and quality:auto's probes.
    "/rs:fill:64:64/g:sm/plain/{}@jpg",
    "/w:100/q:auto/plain/{}@avif",
]
TIMEOUT = 10.0


def seeds(work: Path) -> dict[str, bytes]:
    import pyvips

    photo = work / "photo.png"
    base = pyvips.Image.black(96, 64).add([40, 120, 200]).cast("uchar")
    base = base.draw_rect([250, 30, 30], 10, 10, 40, 20, fill=True)
    base.pngsave(str(photo))
    alpha = work / "alpha.png"
    base.bandjoin(180).pngsave(str(alpha))
    # cjpeg's input (this libvips has no PPM writer).
    subprocess.run([IMAGEMAGICK, str(photo), str(work / "photo.ppm")], check=True)
    commands = {
        "a.jpg": ["cjpeg", "-quality", "80", "-outfile", "OUT", str(work / "photo.ppm")],
        "progressive.jpg": ["cjpeg", "-progressive", "-outfile", "OUT", str(work / "photo.ppm")],
        "a.png": [IMAGEMAGICK, str(alpha), "OUT"],
        "palette.png": [IMAGEMAGICK, str(photo), "-colors", "8", "PNG8:OUT"],
        "a.webp": [IMAGEMAGICK, str(alpha), "-quality", "70", "OUT"],
        "a.tif": [IMAGEMAGICK, str(alpha), "-compress", "lzw", "OUT"],
        "a.avif": ["heif-enc", "-A", "-q", "60", str(alpha), "-o", "OUT"],
        "a.heic": ["heif-enc", "-q", "60", str(photo), "-o", "OUT"],
        "alpha.heic": ["heif-enc", "-q", "60", str(alpha), "-o", "OUT"],
        "a.jxl": ["cjxl", str(photo), "OUT", "-d", "2"],
        "lossless.jxl": ["cjxl", str(alpha), "OUT", "-d", "0"],
        "anim.gif": [IMAGEMAGICK, "-size", "48x32", "-delay", "10", "xc:red", "xc:lime",
                     "xc:blue", "OUT"],
        "anim.jxl": ["cjxl", str(work / "anim.gif"), "OUT", "-d", "1"],
        "a.bmp": [IMAGEMAGICK, str(photo), "BMP3:OUT"],
        "rle.bmp": [IMAGEMAGICK, str(photo), "-colors", "16", "-compress", "RLE", "BMP3:OUT"],
        "a.ico": [IMAGEMAGICK, str(photo), "-define", "icon:auto-resize=16,64", "OUT"],
        "a.psd": [IMAGEMAGICK, str(alpha), "OUT"],
        "a.mp4": ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=96x64:d=1:r=5",
                  "-c:v", "libx264", "-pix_fmt", "yuv420p", "OUT"],
        "turned.mp4": ["ffmpeg", "-v", "error", "-i", str(work / "a.mp4"), "-metadata:s:v",
                       "rotate=90", "-c", "copy", "OUT"],
        "a.webm": ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=s=96x64:d=1:r=5",
                   "-c:v", "libvpx", "OUT"],
    }  # fmt: skip
    made = {
        "a.pdf": pdf([(120, 80, (200, 30, 30)), (60, 90, (30, 30, 200))]),
        "a.svg": SVG,
    }
    for name, command in commands.items():
        out = work / name
        subprocess.run([part.replace("OUT", str(out)) for part in command], check=True,
                       capture_output=True)  # fmt: skip
        made[name] = out.read_bytes()
    made.pop("anim.gif")  # libvips' own: only the input of anim.jxl
    return made


SVG = b"""<svg xmlns="http://www.w3.org/2000/svg" width="96" height="64" viewBox="0 0 96 64">
<linearGradient id="g"><stop offset="0" stop-color="#28c"/>
<stop offset="1" stop-color="#e42"/></linearGradient><rect width="96" height="64" fill="url(#g)"/>
<circle cx="30" cy="30" r="20" fill="#fe0" opacity="0.7"/>
<text x="50" y="50" font-size="12">pp</text></svg>
"""

EXTREMES = [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00\x01\x00"]


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["flip", "run", "cut", "field", "dup", "header"])
        at = rng.randrange(len(out)) if out else 0
        if kind == "flip" and out:
            out[at] ^= 1 << rng.randrange(8)
        elif kind == "run" and out:
            length = rng.randint(1, 64)
            out[at : at + length] = bytes([rng.choice([0, 0xFF])]) * len(out[at : at + length])
        elif kind == "cut":
            out = out[: rng.randint(0, len(out))]
        elif kind == "field" and len(out) > 4:
            at = rng.randrange(len(out) - 4)
            out[at : at + 4] = rng.choice(EXTREMES)
        elif kind == "dup" and out:
            length = rng.randint(1, 256)
            out[at:at] = out[at : at + length]
        elif kind == "header" and len(out) > 40:
            # Headers hold the sizes and counts: hit the first 40 bytes harder.
            at = rng.randrange(4, 40)
            out[at] = rng.choice([0, 1, 0x7F, 0x80, 0xFF])
    return bytes(out)


def answer_fault(answer: httpx.Response, raw: bool) -> str:
    """What is wrong with an answer's body, or "": a refusal must be one line
    of text, an image must decode (a raw answer is the source's own bytes)."""
    if answer.status_code >= 400:
        if not answer.headers.get("content-type", "").startswith("text/plain"):
            return "refusal not text/plain"
        if answer.text.count("\n") != 1 or "Traceback" in answer.text:
            return "refusal not one line"
        return ""
    if answer.status_code == 200 and not raw:
        import pyvips

        try:
            pyvips.Image.new_from_buffer(answer.content, "").avg()
        except pyvips.Error:
            if not decodes_elsewhere(answer.content, answer.headers.get("content-type", "")):
                return "answer does not decode"
    return ""


# What the wheel's libvips cannot read (no BMP, ICO or JPEG XL loader, no
# HEVC), read by Debian's tools instead (ImageMagick takes an icon only when
# told it is one; djxl names its output's format by the extension).
OTHER_DECODERS = {
    "image/bmp": [IMAGEMAGICK, "{}", "info:"],
    "image/x-icon": [IMAGEMAGICK, "ico:{}", "info:"],
    "image/heif": [IMAGEMAGICK, "{}", "info:"],
    "image/heic": [IMAGEMAGICK, "{}", "info:"],
    "image/jxl": ["djxl", "{}", "{}.png"],
}


def decodes_elsewhere(data: bytes, content_type: str) -> bool:
    command = OTHER_DECODERS.get(content_type.split(";")[0].strip())
    if command is None:
        return False
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "answer"
        path.write_bytes(data)
        run = subprocess.run(
            [part.format(path) for part in command], capture_output=True, timeout=60
        )
    return run.returncode == 0


async def run(minutes: float, seed: int, findings: Path, only: frozenset[str]) -> int:
    rng = random.Random(seed)
    origin = Origin().start()
    port = free_port()
    env = serve_env(
        PIXELPIPE_ENABLE_PDF="true",
        PIXELPIPE_ENABLE_PSD="true",
        PIXELPIPE_ENABLE_VIDEO_THUMBNAILS="true",
        PIXELPIPE_TIMEOUT=str(TIMEOUT),
        PIXELPIPE_RESULT_CACHE_BYTES="0",
        PIXELPIPE_SOURCE_CACHE_BYTES="0",
    )
    statuses: Counter[int] = Counter()
    broken: list[str] = []
    slowest = 0.0
    sent = 0
    with tempfile.TemporaryDirectory() as tmp, pixelpipe_process(PIXELPIPE, env, port, 2) as server:
        base = f"http://127.0.0.1:{port}"
        made = {
            name: data
            for name, data in seeds(Path(tmp)).items()
            if not only or name.rsplit(".", 1)[-1] in only
        }
        workers = sorted(worker_pids(server.pid))
        deadline = time.monotonic() + minutes * 60

        async def client(session: httpx.AsyncClient, number: int) -> None:
            nonlocal slowest, sent
            while time.monotonic() < deadline:
                name = rng.choice(sorted(made))
                mutant = mutate(made[name], rng)
                route = f"/fuzz/{seed}/{number}/{sent}/{name}"
                sent += 1
                url = origin.add(route, mutant)
                path = signed(rng.choice(OPTIONS).format(url))
                started = time.monotonic()
                fault = ""
                try:
                    answer = await session.get(base + path)
                    status = answer.status_code
                    fault = answer_fault(answer, "/raw:1/" in path)
                except httpx.HTTPError as error:
                    status = 0
                    broken.append(f"{name}: {type(error).__name__}")
                elapsed = time.monotonic() - started
                slowest = max(slowest, elapsed)
                statuses[status] += 1
                origin.routes.pop(route, None)
                bad = (status >= 500 and status != 503) or elapsed > TIMEOUT + 5 or fault
                if bad:
                    broken.append(f"{name}: {status} after {elapsed:.1f} s {fault}".rstrip())
                    (findings / f"{len(broken):03d}-{status}-{name}").write_bytes(mutant)

        async with httpx.AsyncClient(timeout=TIMEOUT + 30) as session:
            await asyncio.gather(*(client(session, n) for n in range(2)))
            health = (await session.get(base + "/health")).status_code
        alive = sorted(worker_pids(server.pid))
    origin.stop()
    print(f"seed {seed}, {minutes:g} min, {sent} mutants over {len(made)} seed files")
    print("answers: " + ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items())))
    print(f"slowest answer {slowest:.2f} s (TIMEOUT {TIMEOUT:g} s)")
    print(f"workers before {workers}, after {alive}; /health {health}")
    print(f"rule breaks: {len(broken)}")
    for line in broken[:20]:
        print("  " + line)
    return 0 if not broken and workers == alive and health == 200 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--only", default="", help="seed files' extensions, comma-separated")
    args = parser.parse_args()
    findings = HERE / "fuzz-findings"
    findings.mkdir(exist_ok=True)
    only = frozenset(filter(None, args.only.split(",")))
    return asyncio.run(run(args.minutes, args.seed, findings, only))


if __name__ == "__main__":
    raise SystemExit(main())
