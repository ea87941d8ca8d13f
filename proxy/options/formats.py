"""Image format names as URLs spell them, and what each output format can carry."""

from __future__ import annotations

# Formats pixelpipe writes. Names are canonical; `jpg` is accepted as an alias.
OUTPUT_FORMATS: frozenset[str] = frozenset({"jpeg", "png", "webp", "avif", "gif"})

# Formats pixelpipe reads (names as the loader reports them after detection).
INPUT_FORMATS: frozenset[str] = frozenset({"jpeg", "png", "webp", "avif", "heic", "gif", "tiff"})

FORMATS_WITH_ALPHA: frozenset[str] = frozenset({"png", "webp", "avif", "gif"})

CONTENT_TYPES: dict[str, str] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
    "gif": "image/gif",
}

EXTENSIONS: dict[str, str] = {
    "jpeg": "jpg",
    "png": "png",
    "webp": "webp",
    "avif": "avif",
    "gif": "gif",
}

_ALIASES = {"jpg": "jpeg", "jpe": "jpeg", "tif": "tiff", "heif": "heic"}


def normalise_format_name(name: str) -> str:
    lowered = name.lower()
    return _ALIASES.get(lowered, lowered)
