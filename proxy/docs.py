"""Keep the README's reference tables in step with the code that declares them.

`make docs` rewrites the text between `<!-- NAME -->` and `<!-- /NAME -->`
markers; the tests fail when the README and the declarations disagree.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from proxy.errors import error_classes
from proxy.monitoring import metrics_table
from proxy.options.formats import INPUT_FORMATS, REQUESTABLE_FORMATS, SWITCHED_INPUT_FORMATS
from proxy.options.parse import options_table
from proxy.settings import settings_table

# The answers that are not errors, before the error kinds' rows.
_ANSWER_ROWS = (
    (
        "image",
        "200",
        "the image; `Content-Type`, `Content-Length`, `Cache-Control: public, "
        "max-age=<TTL>` (plus `s-maxage`, `stale-while-revalidate` when set, or the "
        "source's own with `CACHE_CONTROL_PASSTHROUGH`), `Expires`, strong `ETag`, "
        "`Content-Disposition`",
    ),
    ("`If-None-Match` matches the ETag", "304", "empty"),
    ("method other than GET/HEAD", "405", "`Method Not Allowed`"),
)


def answers_table() -> str:
    """The README's table of answers: one row per error kind, from `proxy.errors`."""
    rows = ["| case | status | body (one line, plain text) |", "|---|---|---|"]
    rows += [f"| {case} | {status} | {body} |" for case, status, body in _ANSWER_ROWS]
    for kind in error_classes():
        example = kind.__dict__.get("example") or kind.default_reason  # not inherited
        rows.append(f"| {kind.when} | {kind.status} | `{example}` |")
    return "\n".join(rows)


# How each format is read and written, for the formats table.
_FORMAT_NOTES = {
    "jpeg": ("libvips (shrink-on-load)", "libvips (progressive and trellis when large)"),
    "png": ("libvips", "libvips (palette with `PNG_QUANTIZE`)"),
    "webp": ("libvips, animated", "libvips, animated"),
    "avif": ("libvips (libheif, AV1)", "libvips (libheif, AV1)"),
    "gif": ("libvips, animated", "libvips, animated"),
    "tiff": ("libvips", "libvips (deflate)"),
    "svg": ("sanitised, rasterised by librsvg", "the sanitised source only"),
    "heic": (
        "pillow-heif (libheif, HEVC): the primary image, turned by its irot/imir",
        "pillow-heif (libheif, x265)",
    ),
    "jxl": (
        "libjxl (pylibjxl's build): animated, colour profile applied",
        "pillow-jxl-plugin (libjxl), never animated",
    ),
    "bmp": (
        "Pillow: palette, RLE, 16/24/32-bit, top-down",
        "pixelpipe (24-bit, 32-bit with alpha)",
    ),
    "ico": ("Pillow: the largest entry, PNG entries too", "pixelpipe (one PNG entry, <= 256)"),
    "pdf": ("pypdfium2 (PDFium): the `page`, drawn at the size needed (at most 50 MP)", ""),
    "psd": ("psd-tools: the composite the file stores", ""),
    "raw": (
        "rawpy (LibRaw): DNG, CR2, NEF, ARW, ..., developed with the camera's white balance",
        "",
    ),
    "video": ("PyAV (FFmpeg): the frame at `video_thumbnail_second`", ""),
}


def formats_table() -> str:
    """The README's formats table, from the sets the server reads and writes."""
    rows = ["| format | source | result |", "|---|---|---|"]
    for fmt in sorted(INPUT_FORMATS | REQUESTABLE_FORMATS | set(SWITCHED_INPUT_FORMATS)):
        read, write = _FORMAT_NOTES[fmt]
        source = f"yes: {read}" if fmt in INPUT_FORMATS else "no"
        if fmt in SWITCHED_INPUT_FORMATS:
            source = f"off unless `{SWITCHED_INPUT_FORMATS[fmt]}`: {read}"
        result = f"yes: {write}" if fmt in REQUESTABLE_FORMATS else "no"
        rows.append(f"| `{fmt}` | {source} | {result} |")
    return "\n".join(rows)


TABLES: dict[str, Callable[[], str]] = {
    "formats-table": formats_table,
    "answers-table": answers_table,
    "options-table": options_table,
    "settings-table": settings_table,
    "metrics-table": metrics_table,
}


def render(readme: str) -> str:
    for name, make in TABLES.items():
        pattern = re.compile(rf"(<!-- {name} -->\n).*?(\n<!-- /{name} -->)", re.DOTALL)
        if not pattern.search(readme):
            raise ValueError(f"README has no {name} markers")
        start, end = pattern.search(readme).span()  # type: ignore[union-attr]
        opening, closing = f"<!-- {name} -->\n", f"\n<!-- /{name} -->"
        readme = readme[:start] + opening + make() + closing + readme[end:]
    return readme


def main(path: str = "README.md") -> int:
    with open(path, encoding="utf-8") as handle:
        text = render(handle.read())  # before opening for writing: a failure keeps the file
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
