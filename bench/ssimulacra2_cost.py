"""SSIMULACRA2 and /info: time, memory and agreement, this tree against another.

    .venv/bin/python bench/ssimulacra2_cost.py --corpus ../shared/corpus \\
        [--against /path/to/another/checkout] [--repeats 5]

For each tree (this checkout, and `--against`'s, e.g. a worktree of an older
commit), in fresh interpreters on the server's allocator:
- `proxy.pipeline.ssimulacra2.ssimulacra2` on corpus photographs fit to 320,
  800 and 1600 px against their JPEG q60, median ms of `--repeats`, one tree
  after the other at each size; then the peak RSS rise of one call in a child of its own;
- `/info`'s whole report (`proxy.info.image_report`) of two sources at a few
  options, median ms;
- the largest distance from the independent implementation (PyPI
  `ssimulacra2`, read transposed as tests/test_ssimulacra2.py explains) over
  the same pairs at 320 px.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.job_memory import child_environment  # noqa: E402

PHOTOS = ("SafeLanding-5k.jpg", "ColorfulCups.jpg", "Altai-5k.png")
SIDES = (320, 800, 1600)
INFO_OPTIONS = ("rs:fit:300:300", "rs:fit:1200:1200/f:webp", "rs:fit:1600:1600/f:avif")

# argv: tree, what ("time", "memory", "info"), corpus, side or options, repeats
CHILD = r"""
import json, sys, time, statistics
sys.path.insert(0, sys.argv[1])
import pyvips
from proxy.app import configure_libvips
configure_libvips()
from proxy.pipeline.metrics import comparable
from proxy.pipeline.ssimulacra2 import ssimulacra2
what, corpus, arg, repeats = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
photos = json.loads(sys.argv[6])

def pair(name, side):
    data = open(f"{corpus}/{name}", "rb").read()
    reference = comparable(pyvips.Image.thumbnail_buffer(data, side, height=side)).copy_memory()
    candidate = pyvips.Image.new_from_buffer(reference.jpegsave_buffer(Q=60), "")
    return reference, comparable(candidate).copy_memory()

def status(field):
    line = next(l for l in open("/proc/self/status") if l.startswith(field))
    return int(line.split()[1]) * 1024

found = {}
if what == "time":
    for name in photos:
        reference, candidate = pair(name, int(arg))
        ssimulacra2(reference, candidate)  # warm: imports, tables
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            score = ssimulacra2(reference, candidate)
            times.append(time.perf_counter() - start)
        found[name] = {"ms": statistics.median(times) * 1000, "score": score,
                       "size": [reference.width, reference.height]}
elif what == "memory":
    name = photos[0]
    reference, candidate = pair(name, int(arg))
    open("/proc/self/clear_refs", "w").write("5")
    before = status("VmRSS:")
    ssimulacra2(reference, candidate)
    found[name] = {"rise": status("VmHWM:") - before}
elif what == "info":
    from proxy.info import image_report
    from proxy.options import ParserConfig, parse_options, split_path
    from proxy.pipeline.encode import EncoderSettings
    from proxy.pipeline.process import ProcessingLimits
    from proxy.settings import Settings
    settings = Settings.from_env()
    limits = ProcessingLimits.from_settings(settings)
    encoder = EncoderSettings.from_settings(settings)
    split = split_path(f"/unsafe/{arg}/plain/http://origin/image")
    options = parse_options(split.option_segments, split.source_url, split.extension,
                            ParserConfig.from_settings(settings))
    for name in photos:
        data = open(f"{corpus}/{name}", "rb").read()
        image_report(data, options, limits, None, encoder)  # warm
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            report = image_report(data, options, limits, None, encoder)
            times.append(time.perf_counter() - start)
        found[name] = {"ms": statistics.median(times) * 1000,
                       "ssimulacra2": report["result"]["ssimulacra2"]}
print(json.dumps(found))
"""


def child(
    tree: Path, what: str, corpus: Path, arg: str, repeats: int, photos: tuple[str, ...]
) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), what, str(corpus), arg, str(repeats),
         json.dumps(photos)],
        capture_output=True,
        text=True,
        check=True,
        env=child_environment(),
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def agreement(corpus: Path) -> float:
    """The largest |ours - theirs| over the photographs at 320 px (this tree)."""
    import pyvips
    from ssimulacra2 import compute_ssimulacra2

    from proxy.pipeline.metrics import comparable
    from proxy.pipeline.ssimulacra2 import ssimulacra2

    worst = 0.0
    for name in PHOTOS:
        data = (corpus / name).read_bytes()
        reference = comparable(pyvips.Image.thumbnail_buffer(data, 320, height=320)).copy_memory()
        candidate = comparable(pyvips.Image.new_from_buffer(reference.jpegsave_buffer(Q=60), ""))
        turned = [image.rot90().flip("horizontal") for image in (reference, candidate)]
        with tempfile.TemporaryDirectory() as folder:
            paths = [Path(folder) / "a.png", Path(folder) / "b.png"]
            for image, path in zip(turned, paths, strict=True):
                image.write_to_file(str(path))
            theirs = float(compute_ssimulacra2(str(paths[0]), str(paths[1])))
        worst = max(worst, abs(ssimulacra2(reference, candidate) - theirs))
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    trees = {"this": ROOT}
    if args.against:
        trees["against"] = args.against.resolve()
    names = list(trees)
    corpus = args.corpus.resolve()

    print("| photo | size | " + " | ".join(f"{n} ms" for n in names) + " | score (this) |")
    print("|---|---|" + "---:|" * len(names) + "---:|")
    for side in SIDES:
        results = {
            n: child(trees[n], "time", corpus, str(side), args.repeats, PHOTOS) for n in names
        }
        for photo in PHOTOS:
            row = results["this"][photo]
            cells = " | ".join(f"{results[n][photo]['ms']:.0f}" for n in names)
            size = "x".join(map(str, row["size"]))
            print(f"| {photo} | {size} | {cells} | {row['score']:.3f} |")

    print()
    print(
        "| size (SafeLanding-5k.jpg) | "
        + " | ".join(f"{n}: peak RSS rise MiB" for n in names)
        + " |"
    )
    print("|---|" + "---:|" * len(names))
    for side in SIDES:
        rises = [child(trees[n], "memory", corpus, str(side), 1, PHOTOS)[PHOTOS[0]]["rise"]
                 for n in names]  # fmt: skip
        cells = " | ".join(f"{rise / 2**20:.0f}" for rise in rises)
        print(f"| {side} px | {cells} |")

    print()
    print("| /info of | options | " + " | ".join(f"{n} ms" for n in names) + " |")
    print("|---|---|" + "---:|" * len(names))
    for text in INFO_OPTIONS:
        results = {
            n: child(trees[n], "info", corpus, text, args.repeats, PHOTOS[::2]) for n in names
        }
        for photo in PHOTOS[::2]:
            cells = " | ".join(f"{results[n][photo]['ms']:.0f}" for n in names)
            print(f"| {photo} | `{text}` | {cells} |")

    print()
    print(f"largest distance from the independent implementation at 320 px (this tree): "
          f"{agreement(corpus):.5f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
