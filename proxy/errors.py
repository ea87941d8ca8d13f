"""One exception class per failure kind; each knows its HTTP status.

The `reason` is public: it goes to the client as a one-line plain-text body,
so it must never contain internals (paths, tracebacks, addresses we resolved).
"""

from __future__ import annotations


class ProxyError(Exception):
    status: int = 500
    default_reason: str = "internal error"
    # For the README's table of answers: when a client meets this error, and one
    # body the server really sends for it (tests/test_answers.py asks for each).
    when: str = ""
    example: str | None = None  # None: the default reason
    retry_after: int | None = None  # seconds, sent as Retry-After when set

    def __init__(self, reason: str | None = None) -> None:
        text = reason or self.default_reason
        # One line, bounded: reasons may quote user input.
        self.reason = " ".join(text.split())[:300]
        super().__init__(self.reason)


# --- the URL ---------------------------------------------------------------


class InvalidURL(ProxyError):
    """The path is not a processing URL (404, as imgproxy)."""

    when = "the path is not a processing URL (no source, empty segment, bad base64, ...)"
    example = "invalid URL: expected /signature/options/source"
    status = 404
    default_reason = "invalid URL"


class UnknownOption(InvalidURL):
    when = "an option name that does not exist"
    example = "unknown option: foo"
    default_reason = "unknown processing option"


class InvalidOptionArgument(InvalidURL):
    when = "an option's arguments are wrong"
    example = "invalid quality arguments 'abc': expected a quality from 0 to 100"
    default_reason = "invalid processing option argument"


class ForbiddenOption(ProxyError):
    """An option ALLOWED_PROCESSING_OPTIONS does not list (403, as imgproxy)."""

    when = "an option `ALLOWED_PROCESSING_OPTIONS` does not list"
    example = "forbidden processing option: bl"
    status = 403
    default_reason = "forbidden processing option"


class UnknownPreset(InvalidURL):
    when = "a preset `PRESETS` does not define"
    example = "unknown preset: nope"
    default_reason = "unknown preset"


class URITooLong(ProxyError):
    when = "request line over `MAX_HEADER_BYTES`"
    status = 414
    default_reason = "request URI is too long"


class HeadersTooLarge(ProxyError):
    when = (
        "headers over `MAX_HEADER_BYTES` (a head still arriving past it: "
        "the connection is closed too)"
    )
    status = 431
    default_reason = "request headers are too large"


class InvalidSignature(ProxyError):
    when = "the signature matches no key/salt pair"
    status = 403
    default_reason = "invalid signature"


class Unauthorized(ProxyError):
    when = "`SECRET` set and `Authorization: Bearer <secret>` missing or wrong"
    status = 403
    default_reason = "forbidden"


class ServiceOverloaded(ProxyError):
    """More image jobs than the processing threads and the queue hold (503, with Retry-After).

    503, not 429: the server is full, whoever asks; a CDN retries another pod
    or serves stale instead of blaming the client.
    """

    when = "more image jobs than processing threads plus `REQUESTS_QUEUE_SIZE` (`Retry-After: 1`)"
    status = 503
    default_reason = "server busy, try again shortly"
    retry_after = 1


class RequestTimeout(ProxyError):
    """The request's deadline (`TIMEOUT`) passed: its work is stopped (503, as imgproxy)."""

    when = "the request took longer than `TIMEOUT` (queue, download and processing together)"
    status = 503
    default_reason = "request timed out"


class ExpiredURL(ProxyError):
    when = "`expires` in the past"
    status = 404
    default_reason = "expired URL"


# --- the source ------------------------------------------------------------


class SourceNotFound(ProxyError):
    when = "origin 404/410, missing file or object, unknown host (`source host not found`)"
    status = 404
    default_reason = "source image not found"


class SourceForbidden(ProxyError):
    when = (
        "source refused: its address class (the reason names the setting that allows it), "
        "not in `ALLOWED_SOURCES`, a local path outside the root"
    )
    example = (
        "source address is not allowed "
        "(loopback; PIXELPIPE_ALLOW_LOOPBACK_SOURCE_ADDRESSES=true allows it)"
    )
    status = 403
    default_reason = "source address is not allowed"


class SourceAccessDenied(ProxyError):
    """The storage service refused our credentials for this object (403, as imgproxy)."""

    when = "the storage service refused our credentials for the object"
    status = 403
    default_reason = "access to the source object is denied"


class SourceTimeout(ProxyError):
    when = (
        "the source did not arrive within `DOWNLOAD_TIMEOUT` (or connect within `CONNECT_TIMEOUT`)"
    )
    status = 504
    default_reason = "source image download timed out"


class SourceUnavailable(ProxyError):
    when = "origin error, reset or too many redirects"
    example = "source answered HTTP 500"
    status = 502
    default_reason = "source image is unavailable"


class SourceTooLarge(ProxyError):
    when = "source over `MAX_SRC_FILE_SIZE`"
    status = 422
    default_reason = "source image file is too large"


# --- the image -------------------------------------------------------------


class NotAnImage(ProxyError):
    when = "the source bytes are no image"
    status = 422
    default_reason = "source is not an image"


class UnsupportedFormat(ProxyError):
    when = "a format not read or written here, or SVG pass-through with `SANITIZE_SVG=false`"
    example = "SVG output needs an SVG source"
    status = 422
    default_reason = "source image format is not supported"


class ImageTooLarge(ProxyError):
    when = (
        "source over `MAX_SRC_RESOLUTION` (from its header), a result over "
        "`MAX_RESULT_DIMENSION` or 50 MP (`result image would be too large`), or a "
        "PDF page that would be drawn over 50 MP (`source page would be drawn too large`)"
    )
    status = 422
    default_reason = "source image resolution is too large"


class ProcessingFailed(ProxyError):
    when = "the image is corrupt or truncated and cannot be decoded"
    status = 422
    default_reason = "source image could not be processed"


def error_classes() -> list[type[ProxyError]]:
    """Every error kind this module declares, in its order (the README's table's)."""
    return [
        value
        for value in globals().values()
        if isinstance(value, type) and issubclass(value, ProxyError) and value is not ProxyError
    ]
