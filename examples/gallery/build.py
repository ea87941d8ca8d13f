"""Build the example gallery: one static page showing images through pixelpipe.

    .venv/bin/python examples/gallery/build.py --images ../shared/corpus \\
        --base http://127.0.0.1:8080 --out /tmp/gallery/index.html

Every image becomes a `<picture>` with AVIF and WebP `<source>`s and a JPEG
`<img>` fallback, a width-described srcset (320 to 1600 px), `sizes="100vw"`,
lazy loading, and width/height attributes from the image's own size so the
page does not jump as images arrive. The sources are `local:///<file name>`:
start pixelpipe with PIXELPIPE_LOCAL_FILESYSTEM_ROOT set to the same folder.
The key and salt come from PIXELPIPE_KEY / PIXELPIPE_SALT (unsigned without).
"""

from __future__ import annotations

import argparse
import os
import sys
from html import escape
from pathlib import Path

import pyvips

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from signing import UrlBuilder, picture

WIDTHS = (320, 480, 640, 960, 1280, 1600)
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".avif", ".gif")

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pixelpipe gallery</title>
<style>
  body {{ margin: 0; font-family: system-ui, sans-serif; background: #111; color: #eee; }}
  h1 {{ margin: 0; padding: 16px; font-size: 20px; }}
  figure {{ margin: 0 0 16px; }}
  img {{ display: block; width: 100%; height: auto; background: #222; }}
  figcaption {{ padding: 4px 16px; font-size: 13px; color: #aaa; }}
</style>
</head>
<body>
<h1>pixelpipe gallery</h1>
{figures}
</body>
</html>
"""


def figure(builder: UrlBuilder, path: Path) -> str:
    # Width and height as displayed: the EXIF orientation may swap them.
    image = pyvips.Image.new_from_file(str(path), access="sequential")
    width, height = image.width, image.height
    if image.get_typeof("orientation") and image.get("orientation") in (5, 6, 7, 8):
        width, height = height, width
    markup = picture(
        builder,
        f"local:///{path.name}",
        WIDTHS,
        width=width,
        height=height,
        alt=path.stem,
        sizes="100vw",
    )
    return f"<figure>{markup}<figcaption>{escape(path.name)}</figcaption></figure>"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=Path, required=True, help="folder of source images")
    parser.add_argument("--base", required=True, help="pixelpipe's address")
    parser.add_argument("--out", type=Path, required=True, help="where to write index.html")
    args = parser.parse_args()
    key = os.environ.get("PIXELPIPE_KEY", "").split(",")[0] or None
    salt = os.environ.get("PIXELPIPE_SALT", "").split(",")[0] or None
    builder = UrlBuilder(args.base, key=key, salt=salt)
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in SUFFIXES)
    figures = "\n".join(figure(builder, path) for path in paths)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(PAGE.format(figures=figures))
    print(f"{args.out}: {len(paths)} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
