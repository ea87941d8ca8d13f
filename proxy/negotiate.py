"""What the request's headers change: output format by `Accept`, size by client hints.

Pure functions of (options, headers, policy). The result says which request
headers the answer depended on, so the response can name them in `Vary` and
caches in front keep one copy per variant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from proxy.options.model import ProcessingOptions

if TYPE_CHECKING:
    from proxy.settings import Settings

# Upper bounds on what a hint may ask for; anything beyond is ignored, not clamped.
MAX_HINT_DPR = 8.0
MAX_HINT_WIDTH = 16383

CLIENT_HINT_HEADERS = ("Sec-CH-DPR", "DPR", "Sec-CH-Width", "Width")

# Hints are rounded up to these steps before they reach the options (and so
# the cache key): `DPR: 1.0000001` or `Width: 3999` would otherwise each make
# a new variant and a new job with the same pixels. Up, so no one gets less.
HINT_DPR_STEP = 0.5
HINT_WIDTH_STEP = 50


@dataclass(frozen=True, slots=True)
class NegotiationPolicy:
    auto_webp: bool = False
    auto_avif: bool = False
    auto_jxl: bool = False
    enforce_webp: bool = False
    enforce_avif: bool = False
    enforce_jxl: bool = False
    client_hints: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> NegotiationPolicy:
        return cls(
            auto_webp=settings.auto_webp,
            auto_avif=settings.auto_avif,
            auto_jxl=settings.auto_jxl,
            enforce_webp=settings.enforce_webp,
            enforce_avif=settings.enforce_avif,
            enforce_jxl=settings.enforce_jxl,
            client_hints=settings.enable_client_hints,
        )

    def candidates(self, explicit_format: bool = False) -> tuple[str, ...]:
        """Formats `Accept` may choose, best first (imgproxy's order: JPEG XL,
        AVIF, WebP); AUTO_* ones only when the URL names no format. The CDN
        configurations (proxy.cdn) are generated from this too."""
        return tuple(
            fmt
            for fmt, auto, enforce in (
                ("jxl", self.auto_jxl, self.enforce_jxl),
                ("avif", self.auto_avif, self.enforce_avif),
                ("webp", self.auto_webp, self.enforce_webp),
            )
            if enforce or (auto and not explicit_format)
        )

    @property
    def consults_accept(self) -> bool:
        return (
            self.auto_webp
            or self.auto_avif
            or self.auto_jxl
            or self.enforce_webp
            or self.enforce_avif
            or self.enforce_jxl
        )


@dataclass(frozen=True, slots=True)
class Negotiated:
    options: ProcessingOptions
    vary: tuple[str, ...]  # request headers the answer depends on


def accepted_image_types(accept: str | None) -> frozenset[str]:
    """`image/avif,image/webp;q=0.9,*/*;q=0.8` -> {"avif", "webp"}.

    Only types named outright count: `image/*` and `*/*` are sent by every
    browser, including those that cannot decode AVIF.
    """
    if not accept:
        return frozenset()
    found = set()
    for item in accept.lower().split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if not media.startswith("image/") or media == "image/*":
            continue
        if any(_is_zero_q(param) for param in params):
            continue
        found.add(media.removeprefix("image/"))
    return frozenset(found)


def _is_zero_q(param: str) -> bool:
    name, _, value = param.partition("=")
    if name.strip() != "q":
        return False
    try:
        return float(value) <= 0
    except ValueError:
        return False


def negotiate(
    options: ProcessingOptions,
    accept: str | None,
    hints: dict[str, str],
    policy: NegotiationPolicy,
) -> Negotiated:
    """Options as this request's headers refine them, and the headers that mattered.

    Returns the same options object when nothing changed, so callers can keep
    the cache key they already have.
    """
    vary: list[str] = []
    changes: dict[str, object] = {}

    candidates = policy.candidates(explicit_format=options.format is not None)
    if candidates and not options.raw:
        vary.append("Accept")
        accepted = accepted_image_types(accept)
        chosen = tuple(fmt for fmt in candidates if fmt in accepted)
        if chosen and chosen != options.accepted_formats:
            changes["accepted_formats"] = chosen

    if policy.client_hints:
        vary.extend(CLIENT_HINT_HEADERS)
        dpr = _hint(hints, "sec-ch-dpr", "dpr", MAX_HINT_DPR, HINT_DPR_STEP)
        if dpr is not None and options.dpr == 1.0:
            changes["dpr"] = dpr
        width = _hint(hints, "sec-ch-width", "width", MAX_HINT_WIDTH, HINT_WIDTH_STEP)
        if width is not None and options.width == 0:
            # The Width hint counts device pixels; dpr multiplies again later.
            effective_dpr = float(changes.get("dpr", options.dpr))  # type: ignore[arg-type]
            changes["width"] = max(1, round(width / effective_dpr))

    negotiated = replace(options, **changes) if changes else options  # type: ignore[arg-type]
    return Negotiated(negotiated, tuple(vary))


def _hint(hints: dict[str, str], new: str, old: str, high: float, step: float) -> float | None:
    text = hints.get(new) or hints.get(old)
    if not text:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    if not 0 < value <= high:  # also false for NaN
        return None
    return min(high, math.ceil(value / step) * step)
