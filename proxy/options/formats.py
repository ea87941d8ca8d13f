"""Image format names as URLs spell them, and what each output format can carry."""

from __future__ import annotations

# Formats pixelpipe writes. Names are canonical; `jpg` is accepted as an alias.
OUTPUT_FORMATS: frozenset[str] = frozenset(
    {"jpeg", "png", "webp", "avif", "gif", "tiff", "bmp", "ico", "jxl", "heic"}
)

# SVG is written only as a sanitised copy of an SVG source, never encoded from pixels.
REQUESTABLE_FORMATS: frozenset[str] = OUTPUT_FORMATS | {"svg"}

# Formats pixelpipe reads (names as the loader reports them after detection).
INPUT_FORMATS: frozenset[str] = frozenset(
    {"jpeg", "png", "webp", "avif", "heic", "gif", "tiff", "svg", "jxl", "bmp", "ico"}
)

# Sources only imgproxy Pro reads, each read only when its setting is on; never
# passed through (`raw`, `skip_processing`): they are documents, not images.
SWITCHED_INPUT_FORMATS: dict[str, str] = {
    "pdf": "ENABLE_PDF",
    "psd": "ENABLE_PSD",
    "raw": "ENABLE_RAW",
    "video": "ENABLE_VIDEO_THUMBNAILS",
}

FORMATS_WITH_ANIMATION: frozenset[str] = frozenset({"gif", "webp"})

FORMATS_WITH_ALPHA: frozenset[str] = frozenset(
    {"png", "webp", "avif", "gif", "tiff", "bmp", "ico", "jxl", "heic"}
)

CONTENT_TYPES: dict[str, str] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
    "gif": "image/gif",
    "svg": "image/svg+xml",
    "tiff": "image/tiff",
    "heic": "image/heif",
    "jxl": "image/jxl",
    "bmp": "image/bmp",
    "ico": "image/x-icon",  # what imgproxy and browsers send
}

EXTENSIONS: dict[str, str] = {
    "jpeg": "jpg",
    "png": "png",
    "webp": "webp",
    "avif": "avif",
    "gif": "gif",
    "svg": "svg",
    "tiff": "tiff",
    "heic": "heic",
    "jxl": "jxl",
    "bmp": "bmp",
    "ico": "ico",
}

_ALIASES = {"jpg": "jpeg", "jpe": "jpeg", "tif": "tiff", "heif": "heic"}


def normalise_format_name(name: str) -> str:
    lowered = name.lower()
    return _ALIASES.get(lowered, lowered)
