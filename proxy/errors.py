"""One exception class per failure kind; each knows its HTTP status.

The `reason` is public: it goes to the client as a one-line plain-text body,
so it must never contain internals (paths, tracebacks, addresses we resolved).
"""

from __future__ import annotations


class ProxyError(Exception):
    status: int = 500
    default_reason: str = "internal error"
    retry_after: int | None = None  # seconds, sent as Retry-After when set

    def __init__(self, reason: str | None = None) -> None:
        text = reason or self.default_reason
        # One line, bounded: reasons may quote user input.
        self.reason = " ".join(text.split())[:300]
        super().__init__(self.reason)


# --- the URL ---------------------------------------------------------------


class InvalidURL(ProxyError):
    """The path is not a processing URL (404, as imgproxy)."""

    status = 404
    default_reason = "invalid URL"


class UnknownOption(InvalidURL):
    default_reason = "unknown processing option"


class InvalidOptionArgument(InvalidURL):
    default_reason = "invalid processing option argument"


class ForbiddenOption(ProxyError):
    """An option ALLOWED_PROCESSING_OPTIONS does not list (403, as imgproxy)."""

    status = 403
    default_reason = "forbidden processing option"


class UnknownPreset(InvalidURL):
    default_reason = "unknown preset"


class URITooLong(ProxyError):
    status = 414
    default_reason = "request URI is too long"


class HeadersTooLarge(ProxyError):
    status = 431
    default_reason = "request headers are too large"


class InvalidSignature(ProxyError):
    status = 403
    default_reason = "invalid signature"


class Unauthorized(ProxyError):
    status = 403
    default_reason = "forbidden"


class ServiceOverloaded(ProxyError):
    """More image jobs than the processing threads and the queue hold (503, with Retry-After).

    503, not 429: the server is full, whoever asks; a CDN retries another pod
    or serves stale instead of blaming the client.
    """

    status = 503
    default_reason = "server busy, try again shortly"
    retry_after = 1


class ExpiredURL(ProxyError):
    status = 404
    default_reason = "expired URL"


# --- the source ------------------------------------------------------------


class SourceNotFound(ProxyError):
    status = 404
    default_reason = "source image not found"


class SourceForbidden(ProxyError):
    status = 403
    default_reason = "source address is not allowed"


class SourceAccessDenied(ProxyError):
    """The storage service refused our credentials for this object (403, as imgproxy)."""

    status = 403
    default_reason = "access to the source object is denied"


class SourceTimeout(ProxyError):
    status = 504
    default_reason = "source image download timed out"


class SourceUnavailable(ProxyError):
    status = 502
    default_reason = "source image is unavailable"


class SourceTooLarge(ProxyError):
    status = 422
    default_reason = "source image file is too large"


# --- the image -------------------------------------------------------------


class NotAnImage(ProxyError):
    status = 422
    default_reason = "source is not an image"


class UnsupportedFormat(ProxyError):
    status = 422
    default_reason = "source image format is not supported"


class ImageTooLarge(ProxyError):
    status = 422
    default_reason = "source image resolution is too large"


class ProcessingFailed(ProxyError):
    status = 422
    default_reason = "source image could not be processed"
