"""Build signed pixelpipe (imgproxy-compatible) URLs from Python values.

    images = UrlBuilder("https://img.example.com", key=KEY, salt=SALT)
    thumb = images.with_options(resize=("fill", 300, 200), quality=80)
    thumb.url("https://shop.example.com/cup.jpg", format="webp")
    # https://img.example.com/<signature>/rs:fill:300:200/q:80/plain/https://shop.example.com/cup.jpg@webp

A builder is immutable: `with_options` returns a new one, so a configured
builder can be shared by a whole app. Option values are Python values: a
scalar for a one-argument option (`quality=80`, `blur=0.5`, `enlarge=True`),
a tuple for several arguments in the server's order (`resize=("fill", 300,
200)`, `gravity=("fp", 0.5, 0.25)`), `None` inside a tuple for an argument
left at its default. Options are written with their short names in one fixed
order, so the same options always give the same URL.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from signing.options import BY_SPELLING, ORDER
from signing.signer import Signer

# What a URL carries when it is not signed (imgproxy accepts any text there too).
UNSIGNED = "insecure"


def format_number(value: float) -> str:
    """The server's shortest faithful spelling: 2.0 -> "2", 0.25 -> "0.25"."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def format_argument(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return format_number(value)
    text = str(value)
    if "/" in text:
        raise ValueError(f"option arguments cannot contain '/': {text!r}")
    return text


def _colour(value: Any) -> tuple[str, ...]:
    """(255, 136, 0) or "ff8800" -> ("ff8800",)."""
    if isinstance(value, tuple | list) and len(value) == 3:
        return ("{:02x}{:02x}{:02x}".format(*(int(v) for v in value)),)
    return (str(value).lstrip("#").lower(),)


def _expires(value: Any) -> tuple[str, ...]:
    """A unix time, a timezone-aware datetime, or a timedelta from now."""
    if isinstance(value, dt.timedelta):
        value = dt.datetime.now(dt.UTC) + value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("expires: give a timezone-aware datetime (or a timedelta)")
        value = int(value.timestamp())
    return (str(int(value)),)


def _filename(value: Any) -> tuple[str, ...]:
    # Always base64 (the `:1` flag): any file name survives the URL unchanged.
    encoded = base64.urlsafe_b64encode(str(value).encode()).rstrip(b"=").decode()
    return (encoded, "1")


def _watermark_text(value: Any) -> tuple[str, ...]:
    # The text (Pango markup) as the server reads it: URL-safe base64.
    return (base64.urlsafe_b64encode(str(value).encode()).rstrip(b"=").decode(),)


def _format_quality(value: Any) -> tuple[str, ...]:
    pairs = value.items() if isinstance(value, Mapping) else value
    return tuple(part for fmt, quality in pairs for part in (str(fmt), str(int(quality))))


# Options whose Python value is not just "a value or a tuple of arguments".
_SPECIAL = {
    "background": _colour,
    "expires": _expires,
    "filename": _filename,
    "format_quality": _format_quality,
    "watermark_text": _watermark_text,
}


def option_arguments(name: str, value: Any) -> tuple[str, ...]:
    convert = _SPECIAL.get(name)
    if convert is not None:
        return convert(value)
    values = value if isinstance(value, tuple | list) else (value,)
    arguments = [format_argument(item) for item in values]
    while arguments and arguments[-1] == "":  # trailing defaults need no colons
        arguments.pop()
    return tuple(arguments)


def canonical_name(spelling: str) -> str:
    option = BY_SPELLING.get(spelling)
    if option is None:
        raise ValueError(f"unknown processing option: {spelling}")
    return option.name


@dataclass(frozen=True, slots=True)
class UrlBuilder:
    """Signed (or unsigned) pixelpipe URLs for one server and one key pair."""

    base: str = ""  # "https://img.example.com"; empty: paths only
    key: str | bytes | None = None  # hex, as the server's PIXELPIPE_KEY
    salt: str | bytes | None = None
    signature_size: int = 32
    encode_source: bool = False  # True: base64 source URLs instead of plain ones
    options: tuple[tuple[str, tuple[str, ...]], ...] = ()
    _signer: Signer | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.key is None) != (self.salt is None):
            raise ValueError("give both key and salt, or neither")
        if self.key is not None and self.salt is not None:
            object.__setattr__(self, "_signer", Signer(self.key, self.salt, self.signature_size))
        object.__setattr__(self, "base", self.base.rstrip("/"))

    def with_options(self, **options: Any) -> UrlBuilder:
        """A new builder with these options added (or replaced)."""
        merged = dict(self.options)
        for spelling, value in options.items():
            name = canonical_name(spelling)
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = option_arguments(name, value)
        ordered = tuple(sorted(merged.items(), key=lambda item: ORDER[item[0]]))
        return replace(self, options=ordered)

    def with_option_text(self, texts: Iterable[str]) -> UrlBuilder:
        """Options as written in URLs: "rs:fill:300:200", "quality:80", ..."""
        merged = dict(self.options)
        for text in texts:
            spelling, _, rest = text.partition(":")
            name = canonical_name(spelling)
            arguments = tuple(rest.split(":")) if rest else ()
            if name == "format" and arguments:
                arguments = (arguments[0].lower(),)
            merged[name] = arguments
        ordered = tuple(sorted(merged.items(), key=lambda item: ORDER[item[0]]))
        return replace(self, options=ordered)

    def path(self, source: str, **options: Any) -> str:
        """The signed path: /SIGNATURE/options.../plain/SOURCE[@format]."""
        builder = self.with_options(**options) if options else self
        parts, extension = [], ""
        for name, arguments in builder.options:
            short = BY_SPELLING[name].short
            if name == "format":
                extension = arguments[0] if arguments else ""
                continue
            parts.append(":".join((short, *arguments)))
        if self.encode_source:
            encoded = base64.urlsafe_b64encode(source.encode()).rstrip(b"=").decode()
            parts.append(encoded + (f".{extension}" if extension else ""))
        else:
            # As the server's canonical form: only what would break the path is escaped.
            parts.append(
                "plain/" + quote(source, safe="/:") + (f"@{extension}" if extension else "")
            )
        unsigned = "/" + "/".join(parts)
        signature = self._signer.sign(unsigned) if self._signer else UNSIGNED
        return f"/{signature}{unsigned}"

    def url(self, source: str, **options: Any) -> str:
        return self.base + self.path(source, **options)

    def info_url(self, source: str, **options: Any) -> str:
        """The `/info` URL for the same options (signed the same way)."""
        return self.base + "/info" + self.path(source, **options)
