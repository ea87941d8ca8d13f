"""Held-back images for quality:auto: pictures the rule was not calibrated on.

    .venv/bin/python bench/heldout.py [--dest ~/.cache/pixelpipe-bench/heldout]

The corpus (../shared/corpus) is 12 pictures from Debian's
`plasma-workspace-wallpapers`; the same package holds 19 more, which this
script extracts (the largest size of each) so the rule's constants can be
checked on images they never saw: 4 photographs (BytheWater, Grey, Kite, Path)
and 15 rendered wallpapers (gradients, facets, flat shapes). A download step
like `make test`'s installs (`apt-get download` from the Debian mirror, about
94 MB, once); the benchmarks themselves read local files only.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

PACKAGE = "plasma-workspace-wallpapers"
# In the corpus already (../shared/corpus/README.md): not held back.
IN_CORPUS = frozenset(
    {
        "Altai",
        "Autumn",
        "ColdRipple",
        "ColorfulCups",
        "DarkestHour",
        "EveningGlow",
        "FallenLeaf",
        "Kay",
        "OneStandsOut",
        "SafeLanding",
        "summer_1am",
    }
)
PHOTOS = frozenset({"BytheWater", "Grey", "Kite", "Path"})
DEFAULT_DEST = Path.home() / ".cache" / "pixelpipe-bench" / "heldout"


def largest(images: Path) -> Path:
    """The biggest of a wallpaper's sizes (files are named WIDTHxHEIGHT.ext)."""

    def pixels(path: Path) -> int:
        width, height = path.stem.split("x")
        return int(width) * int(height)

    return max((p for p in images.iterdir() if "x" in p.stem), key=pixels)


def extract(dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        subprocess.run(["apt-get", "download", PACKAGE], cwd=work, check=True)
        (deb,) = work.glob("*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "x")], check=True)
        written = []
        for wallpaper in sorted((work / "x/usr/share/wallpapers").iterdir()):
            images = wallpaper / "contents" / "images"
            if wallpaper.name in IN_CORPUS or not images.is_dir():
                continue
            source = largest(images)
            target = dest / f"{wallpaper.name}{source.suffix}"
            target.write_bytes(source.read_bytes())
            written.append(target)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST)
    args = parser.parse_args()
    for path in extract(args.dest):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
