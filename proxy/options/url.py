"""Split a raw request path into signature, option segments and source URL.

imgproxy's layouts:
    /%signature/%options/plain/%source_url@%extension
    /%signature/%options/%base64url_source.%extension   (may be split by "/")
Option segments are the leading segments that contain ":"; the first one
without it starts the source. The signature covers everything after the
signature segment, leading "/" included, exactly as the client sent it, so
this works on the raw (still percent-encoded) path.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from urllib.parse import unquote

from proxy.errors import InvalidURL

ARGUMENT_SEPARATOR = ":"


@dataclass(frozen=True, slots=True)
class SplitPath:
    signature: str
    signed_path: str  # what the signature covers: "/" + everything after the signature
    option_segments: tuple[str, ...]
    source_url: str
    extension: str | None


def split_signature(raw_path: str) -> tuple[str, str]:
    """ "/sig/rest..." -> ("sig", "/rest..."): all a signature check needs."""
    signature, sep, rest = raw_path.lstrip("/").partition("/")
    if not sep or not signature or not rest:
        raise InvalidURL("invalid URL: expected /signature/options/source")
    return signature, "/" + rest


def split_path(
    raw_path: str,
    separator: str = ARGUMENT_SEPARATOR,
    base64_filename: bool = False,
    only_presets: bool = False,
) -> SplitPath:
    """`separator`: ARGUMENTS_SEPARATOR; `base64_filename`: BASE64_URL_INCLUDES_FILENAME
    (a segment after a base64 source is a file name for humans, and is ignored);
    `only_presets`: ONLY_PRESETS, where the first segment is always the preset list,
    as imgproxy reads it (a single preset name has no separator to tell it apart)."""
    signature, signed_path = split_signature(raw_path)
    segments = signed_path[1:].split("/")
    if only_presets:
        first_source = 1
    else:
        first_source = next(
            (i for i, seg in enumerate(segments) if separator not in seg), len(segments)
        )
    options = tuple(segments[:first_source])
    if any(not seg for seg in options):
        raise InvalidURL("invalid URL: empty option segment")
    source_parts = segments[first_source:]
    if base64_filename and source_parts and source_parts[0] != "plain":
        source_parts = source_parts[:1]
    source_url, extension = decode_source(source_parts)
    return SplitPath(
        signature=signature,
        signed_path=signed_path,
        option_segments=options,
        source_url=source_url,
        extension=extension,
    )


def decode_source(parts: list[str]) -> tuple[str, str | None]:
    if not parts or not "".join(parts):
        raise InvalidURL("invalid URL: source URL is empty")
    if parts[0] == "plain" and len(parts) > 1:
        return _decode_plain(parts[1:])
    return _decode_base64(parts)


def _decode_plain(parts: list[str]) -> tuple[str, str | None]:
    pieces = "/".join(parts).split("@")
    if len(pieces) > 2:
        raise InvalidURL("invalid URL: several extensions given (escape @ as %40)")
    if not pieces[0]:
        raise InvalidURL("invalid URL: source URL is empty")
    extension = pieces[1] if len(pieces) == 2 and pieces[1] else None
    try:
        source = unquote(pieces[0], errors="strict")
    except UnicodeDecodeError:
        raise InvalidURL("invalid URL: source URL is not valid UTF-8") from None
    return source, extension


def _decode_base64(parts: list[str]) -> tuple[str, str | None]:
    pieces = "".join(parts).split(".")
    if len(pieces) > 2:
        raise InvalidURL("invalid URL: several extensions given")
    encoded = pieces[0].rstrip("=")
    if not encoded:
        raise InvalidURL("invalid URL: source URL is empty")
    extension = pieces[1] if len(pieces) == 2 and pieces[1] else None
    try:
        padded = encoded + "=" * (-len(encoded) % 4)
        source = base64.b64decode(padded, altchars=b"-_", validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidURL("invalid URL: source is not valid URL-safe base64") from None
    return source, extension


def rewrite_source(
    url: str, base_url: str, replacements: tuple[tuple[re.Pattern[str], str], ...]
) -> str:
    """imgproxy's URL_REPLACEMENTS (in order), then BASE_URL (unless already there)."""
    for pattern, replacement in replacements:
        url = pattern.sub(replacement, url)
    if base_url and not url.startswith(base_url):
        url = base_url + url
    return url
