"""Random option chains, imgproxy's and thumbor's, asked of a running server.

    .venv/bin/python bench/fuzz_options.py --minutes 10 [--seed N]

bench/fuzz_formats.py mutates the sources under a few fixed option sets; this
holds the sources valid (a photo-sized JPEG, a PNG with alpha, an animated
GIF, an SVG, a two-page PDF, all made by ImageMagick or by hand) and mutates
the URL instead: one to six options drawn from every name the parser knows,
each with arguments mostly shaped like its own (a size where a size goes, a
gravity where a gravity goes, so that most URLs reach the steps), some drawn
from numbers at and past the edges (0, -1, 1e9, 2^31, NaN, inf), colours,
keywords, base64 and junk; and thumbor paths with random sizes, crops,
alignments and filter chains. Some imgproxy paths ask /info, and each request
sends one of a few Accept headers (AVIF, WebP, JPEG XL, none). Each URL is
signed and asked of `pixelpipe serve` (2 workers, PDF on, TIMEOUT 10 s), two
clients at a time. The rules are fuzz_formats.py's: no 5xx but 503 (and 502
for a frame() or watermark() image nothing serves), a refusal
is one line of text, an image answer decodes, no answer slower than TIMEOUT +
5 s, no worker dies, /health answers at the end. URLs that broke a rule are
printed (and written to bench/fuzz-findings/options-SEED.txt); so is each
jump of a worker's peak memory by more than 256 MiB, with the URL asked then.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
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

from bench.fuzz_formats import answer_fault  # noqa: E402
from proxy.options.parse import OPTIONS_BY_NAME  # noqa: E402
from signing.thumbor import thumbor_url  # noqa: E402
from tests.conftest import signed  # noqa: E402
from tests.ports import free_port  # noqa: E402
from tests.servers import Origin  # noqa: E402
from tests.soak import pixelpipe_process, worker_pids  # noqa: E402
from tests.test_cli import PIXELPIPE, serve_env  # noqa: E402
from tests.test_formats_pro import pdf  # noqa: E402

IMAGEMAGICK = "/usr/bin/convert"
TIMEOUT = 10.0
THUMBOR_KEY = "fake-fuzz-thumbor-key"  # a made-up key for this run only

NUMBERS = [
    "0", "1", "-1", "2", "3", "7", "10", "64", "100", "300", "999", "4096", "10000",
    "100000", "2147483648", "99999999999999999999", "0.5", "-0.5", "1.5", "0.0001",
    "1e9", "1e-9", "nan", "inf", "-inf", "0x10", "-0", "+5", "1_000",
]  # fmt: skip
WORDS = [
    "fill", "fit", "force", "auto", "fill-down", "ce", "sm", "no", "so", "ea", "we",
    "noea", "nowe", "soea", "sowe", "fp", "obj", "face", "cat", "true", "false", "t",
    "f", "jpg", "png", "webp", "avif", "gif", "jxl", "heic", "bmp", "ico", "tiff",
    "svg", "pdf", "mp4", "always", "never", "none", "multiply", "down", "up", "left",
    "right", "top", "bottom", "center", "ff0000", "fff", "80ff0080", "zzzzzz",
    "default", "", "..", "%2F", "%00", "a" * 300,
]  # fmt: skip
TEXTS = ["hello", "<script>alert(1)</script>", "x" * 2000, "\u00e9\u00e8 \u2603", ""]
THUMBOR_FILTERS = [
    "quality", "format", "rotate", "strip_exif", "strip_icc", "upscale", "max_bytes",
    "stretch", "brightness", "contrast", "rgb", "grayscale", "saturation", "colorize",
    "equalize", "curve", "convolution", "noise", "red_eye", "background_color",
    "proportion", "sharpen", "blur", "round_corner", "fill", "focal", "no_upscale",
    "watermark", "max_age", "extract_focal", "autojpg", "frame", "cover", "trim",
    "nosuch",
]  # fmt: skip


RSS_RISE = 256 * 2**20
ACCEPTS = ["*/*", "image/avif,image/webp,*/*", "image/webp", "image/jxl,image/avif", "text/html"]


def peak_rss(pid: int) -> int:
    """A process's peak resident memory (VmHWM), in bytes; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def argument(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.55:
        return rng.choice(NUMBERS)
    if kind < 0.9:
        return rng.choice(WORDS)
    text = rng.choice(TEXTS).encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


PLAUSIBLE = [
    "0", "1", "2", "5", "10", "50", "100", "200", "300", "640", "1000", "2000", "0.3",
    "0.5", "0.9", "1.5", "-10", "-1", "45", "90", "180", "270",
]  # fmt: skip
FIELDS = {
    ("type", "resizing_type"): ["fit", "fill", "fill-down", "force", "auto"],
    ("enlarge", "extend", "bool", "horizontal", "vertical", "keep_alpha", "equal_hor",
     "equal_ver", "encoded"): ["1", "0", "true", "false", "t"],
    ("gravity", "position"): ["ce", "no", "so", "ea", "we", "noea", "nowe", "soea", "sowe",
                              "sm", "fp", "re", "obj", "face"],
    ("colour", "colour1", "colour2", "rrggbb"): ["ff0000", "000", "80808080", "ffffff"],
    ("extension", "format"): ["jpg", "png", "webp", "avif", "gif", "jxl", "heic", "bmp",
                              "ico", "tiff", "svg", "best"],
    ("direction",): ["down", "up", "left", "right", "30"],
    ("mode",): ["none", "always", "auto"],
    ("name",): ["default", "nosuch"],
}  # fmt: skip
FIELD_VALUES = {field: values for fields, values in FIELDS.items() for field in fields}


def typed_arguments(rng: random.Random, spec: str) -> list[str]:
    """Arguments shaped like the option's own (`type:width:height:...`), mostly
    plausible, some at the edges: a URL must get past the parser to reach the
    steps."""
    fields = spec.replace(" or ", ",").split(",")[
        rng.randrange(spec.count(",") + spec.count(" or ") + 1)
    ]
    names = [name.strip() for name in fields.split(":") if name.strip() != "..."]
    if rng.random() < 0.3:
        names = names[: rng.randint(1 if rng.random() < 0.9 else 0, len(names))]
    args = []
    for name in names:
        if rng.random() < 0.1:
            args.append(argument(rng))
        elif name in FIELD_VALUES:
            args.append(rng.choice(FIELD_VALUES[name]))
        elif name == "base64 text":
            args.append(base64.urlsafe_b64encode(rng.choice(TEXTS).encode()).decode())
        elif name in ("string", "filename"):
            args.append(rng.choice(["x", "a.b", "%20", ""]))
        else:
            args.append(rng.choice(PLAUSIBLE if rng.random() < 0.85 else NUMBERS))
    return args


def imgproxy_path(rng: random.Random, source: str) -> str:
    options = []
    for _ in range(rng.randint(1, 6)):
        name = rng.choice(sorted(OPTIONS_BY_NAME))
        if rng.random() < 0.8:
            args = typed_arguments(rng, OPTIONS_BY_NAME[name].args)
        else:
            args = [argument(rng) for _ in range(rng.randint(0, 6))]
        options.append(":".join([name, *args]))
    extension = rng.choice(["", "", "@png", "@webp", "@avif", "@jpg", "@gif", "@svg", "@x"])
    return "/" + "/".join(options) + f"/plain/{source}{extension}"


def thumbor_path(rng: random.Random, source: str) -> str:
    parts = []
    if rng.random() < 0.3:
        parts.append(rng.choice(["meta", "trim", "trim:bottom-right:40", "trim:x:999"]))
    if rng.random() < 0.3:
        parts.append(rng.choice(["fit-in", "adaptive-fit-in", "full-fit-in"]))
    if rng.random() < 0.3:
        a, b, c, d = (rng.choice(NUMBERS[:14]) for _ in range(4))
        parts.append(f"{a}x{b}:{c}x{d}")
    if rng.random() < 0.8:
        w, h = (rng.choice(["", "-", ""]) + rng.choice(NUMBERS[:16]) for _ in range(2))
        parts.append(f"{w}x{h}")
    if rng.random() < 0.3:
        parts.append(rng.choice(["left", "center", "right", "top", "middle", "bottom"]))
    if rng.random() < 0.3:
        parts.append("smart")
    if rng.random() < 0.7:
        filters = []
        for _ in range(rng.randint(1, 4)):
            name = rng.choice(THUMBOR_FILTERS)
            args = ",".join(argument(rng) for _ in range(rng.randint(0, 5)))
            filters.append(f"{name}({args})")
        parts.append("filters:" + ":".join(filters))
    parts.append(source.removeprefix("http://"))
    return thumbor_url("/".join(parts), THUMBOR_KEY)


def sources(work: Path) -> dict[str, tuple[bytes, str]]:
    def convert(name: str, *args: str) -> bytes:
        subprocess.run([IMAGEMAGICK, *args, str(work / name)], check=True)
        return (work / name).read_bytes()

    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="300" height="200">'
        b'<rect width="300" height="100" fill="#c00"/><circle cx="150" cy="150" r="40"/></svg>'
    )
    return {
        "photo.jpg": (
            convert("photo.jpg", "-size", "1600x1000", "plasma:", "-quality", "85"),
            "image/jpeg",
        ),
        "alpha.png": (
            convert("alpha.png", "-size", "400x300", "radial-gradient:red-none"),
            "image/png",
        ),
        "anim.gif": (
            convert("anim.gif", "-delay", "10", "-size", "120x80", "xc:red", "xc:lime", "xc:blue"),
            "image/gif",
        ),
        "drawing.svg": (svg, "image/svg+xml"),
        "pages.pdf": (pdf([(300, 200, (200, 0, 0)), (200, 300, (0, 0, 200))]), "application/pdf"),
    }


async def run(minutes: float, seed: int, findings: Path) -> int:
    rng = random.Random(seed)
    origin = Origin().start()
    port = free_port()
    env = serve_env(
        PIXELPIPE_ENABLE_PDF="true",
        PIXELPIPE_THUMBOR_KEY=THUMBOR_KEY,
        PIXELPIPE_TIMEOUT=str(TIMEOUT),
        PIXELPIPE_RESULT_CACHE_BYTES="0",
    )
    statuses: Counter[int] = Counter()
    reasons: Counter[str] = Counter()
    broken: list[str] = []
    slowest = (0.0, "")
    sent = 0
    with tempfile.TemporaryDirectory() as tmp, pixelpipe_process(PIXELPIPE, env, port, 2) as server:
        base = f"http://127.0.0.1:{port}"
        urls = {}
        for name, (data, kind) in sources(Path(tmp)).items():
            urls[name] = origin.add(f"/fuzz/{seed}/{name}", data, kind)
        workers = sorted(worker_pids(server.pid))
        deadline = time.monotonic() + minutes * 60
        peak = max(peak_rss(pid) for pid in workers)
        rises: list[tuple[int, str]] = []

        async def client(session: httpx.AsyncClient) -> None:
            nonlocal slowest, sent, peak
            while time.monotonic() < deadline:
                source = urls[rng.choice(sorted(urls))]
                kind = rng.random()
                if kind < 0.65:
                    path = signed(imgproxy_path(rng, source))
                elif kind < 0.75:
                    path = "/info" + signed(imgproxy_path(rng, source))
                else:
                    path = thumbor_path(rng, source)
                accept = rng.choice(ACCEPTS)
                sent += 1
                started = time.monotonic()
                fault = ""
                try:
                    answer = await session.get(base + path, headers={"Accept": accept})
                    status = answer.status_code
                    raw = answer.headers.get("content-type", "").startswith(
                        ("application/json", "image/svg", "application/pdf")
                    )
                    fault = answer_fault(answer, raw)
                except httpx.HTTPError as error:
                    status = 0
                    fault = type(error).__name__
                elapsed = time.monotonic() - started
                slowest = max(slowest, (elapsed, path))
                statuses[status] += 1
                if 400 <= status < 500:
                    reasons[answer.text.split(":")[0].strip()[:60]] += 1
                # thumbor's frame() and watermark() name images of their own, fuzzed
                # too: one nothing serves (`frame(0)`: port 80 here) is the origin
                # error an unreachable source is, 502 in one line.
                unreachable = (
                    status == 502
                    and answer.text == "source image could not be downloaded\n"
                    and ("frame(" in path or "watermark(" in path)
                )
                bad = (status >= 500 and status != 503) and not unreachable
                bad = bad or elapsed > TIMEOUT + 5 or fault
                if bad:
                    broken.append(f"{status} after {elapsed:.1f} s {fault} {path}")
                # A worker's peak memory that jumps: the URL asked at the time
                # (or the other client's) is worth a look.
                now = max(peak_rss(pid) for pid in workers)
                if now > peak + RSS_RISE:
                    rises.append((now - peak, path))
                peak = max(peak, now)

        async with httpx.AsyncClient(timeout=TIMEOUT + 30) as session:
            await asyncio.gather(*(client(session) for _ in range(2)))
            health = (await session.get(base + "/health")).status_code
        alive = sorted(worker_pids(server.pid))
    origin.stop()
    print(f"seed {seed}, {minutes:g} min, {sent} URLs over {len(urls)} sources")
    print("answers: " + ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items())))
    print("commonest refusals: " + "; ".join(f"{r} ({n})" for r, n in reasons.most_common(8)))
    print(f"slowest answer {slowest[0]:.2f} s (TIMEOUT {TIMEOUT:g} s): {slowest[1]}")
    print(f"workers before {workers}, after {alive}; /health {health}")
    print(f"largest worker peak RSS {peak / 2**20:.0f} MiB; jumps over {RSS_RISE >> 20} MiB:")
    for rise, path in sorted(rises, reverse=True)[:5]:
        print(f"  +{rise / 2**20:.0f} MiB {path[:300]}")
    print(f"rule breaks: {len(broken)}")
    for line in broken[:20]:
        print("  " + line[:400])
    if broken:
        (findings / f"options-{seed}.txt").write_text("\n".join(broken) + "\n")
    return 0 if not broken and workers == alive and health == 200 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    findings = HERE / "fuzz-findings"
    findings.mkdir(exist_ok=True)
    return asyncio.run(run(args.minutes, args.seed, findings))


if __name__ == "__main__":
    raise SystemExit(main())
