"""Format negotiation by Accept and client hints, as pure functions."""

from __future__ import annotations

import pytest

from proxy.negotiate import NegotiationPolicy, accepted_image_types, negotiate
from proxy.options.model import ProcessingOptions
from proxy.settings import Settings, SettingsError

CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
OLD_SAFARI = "image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5"
CURL = "*/*"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (CHROME, {"avif", "webp", "apng", "svg+xml"}),
        (OLD_SAFARI, {"webp", "png", "svg+xml"}),
        (CURL, set()),
        ("image/*", set()),  # a wildcard is not a promise to decode AVIF
        ("IMAGE/AVIF", {"avif"}),
        ("image/avif;q=0, image/webp", {"webp"}),  # q=0 means "not acceptable"
        ("image/webp;q=0.0", set()),
        ("image/webp;q=junk", {"webp"}),
        ("", set()),
        (None, set()),
    ],
)
def test_accept_header_parsing(accept: str | None, expected: set[str]) -> None:
    assert accepted_image_types(accept) == expected


AUTO_BOTH = NegotiationPolicy(auto_webp=True, auto_avif=True)
NO_HINTS: dict[str, str] = {}


def plain(**fields: object) -> ProcessingOptions:
    return ProcessingOptions(source_url="http://img.test/a.jpg", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("policy", "options", "accept", "formats", "vary"),
    [
        (AUTO_BOTH, plain(), CHROME, ("avif", "webp"), ("Accept",)),
        (AUTO_BOTH, plain(), OLD_SAFARI, ("webp",), ("Accept",)),
        # Accept was consulted even though it named nothing we use: caches must know.
        (AUTO_BOTH, plain(), CURL, (), ("Accept",)),
        # A format in the URL wins over auto detection, and then Accept does not matter.
        (AUTO_BOTH, plain(format="png"), CHROME, (), ()),
        # ...but not over enforcement.
        (NegotiationPolicy(enforce_webp=True), plain(format="png"), CHROME, ("webp",), ("Accept",)),
        (NegotiationPolicy(auto_webp=True), plain(), CHROME, ("webp",), ("Accept",)),
        (NegotiationPolicy(), plain(), CHROME, (), ()),
        # raw answers the source's bytes whatever Accept says.
        (AUTO_BOTH, plain(raw=True), CHROME, (), ()),
    ],
)
def test_format_negotiation(
    policy: NegotiationPolicy,
    options: ProcessingOptions,
    accept: str,
    formats: tuple[str, ...],
    vary: tuple[str, ...],
) -> None:
    result = negotiate(options, accept, NO_HINTS, policy)
    assert result.options.accepted_formats == formats
    assert result.vary == vary
    if not formats:
        assert result.options is options  # unchanged options keep their cache key


def test_negotiated_formats_change_the_cache_key() -> None:
    options = plain()
    avif = negotiate(options, CHROME, NO_HINTS, AUTO_BOTH).options
    webp = negotiate(options, OLD_SAFARI, NO_HINTS, AUTO_BOTH).options
    keys = {options.canonical(), avif.canonical(), webp.canonical()}
    assert len(keys) == 3


HINTS = NegotiationPolicy(client_hints=True)


@pytest.mark.parametrize(
    ("options", "hints", "width", "dpr"),
    [
        (plain(), {"dpr": "2"}, 0, 2.0),
        (plain(), {"sec-ch-dpr": "3", "dpr": "2"}, 0, 3.0),  # the Sec-CH- name wins
        (plain(), {"width": "600"}, 600, 1.0),
        # Width counts device pixels: with DPR 2, 800 device px = 400 CSS px, dpr 2.
        (plain(), {"sec-ch-width": "800", "sec-ch-dpr": "2"}, 400, 2.0),
        # The URL's own width and dpr are never overridden.
        (plain(width=300), {"width": "800"}, 300, 1.0),
        (plain(dpr=1.5), {"dpr": "3"}, 0, 1.5),
        # Nonsense is ignored, not clamped.
        (plain(), {"dpr": "0"}, 0, 1.0),
        (plain(), {"dpr": "9"}, 0, 1.0),
        (plain(), {"dpr": "nan"}, 0, 1.0),
        (plain(), {"width": "-5"}, 0, 1.0),
        (plain(), {"width": "99999"}, 0, 1.0),
        (plain(), {"width": "wide"}, 0, 1.0),
        # Rounded up to steps (DPR 0.5, Width 50 device px): near-equal hints share a variant.
        (plain(), {"dpr": "1.0000001"}, 0, 1.5),
        (plain(), {"dpr": "1.25"}, 0, 1.5),
        (plain(), {"dpr": "7.9"}, 0, 8.0),
        (plain(), {"width": "3999"}, 4000, 1.0),
        (plain(), {"width": "3951"}, 4000, 1.0),
        (plain(), {"width": "1"}, 50, 1.0),
        (plain(), {"width": "16383"}, 16383, 1.0),
        (plain(), {"sec-ch-width": "301", "sec-ch-dpr": "1.4"}, 233, 1.5),
    ],
)
def test_client_hints(
    options: ProcessingOptions, hints: dict[str, str], width: int, dpr: float
) -> None:
    result = negotiate(options, None, hints, HINTS)
    assert (result.options.width, result.options.dpr) == (width, dpr)
    assert set(result.vary) == {"Sec-CH-DPR", "DPR", "Sec-CH-Width", "Width"}


def test_hints_are_ignored_unless_enabled() -> None:
    result = negotiate(plain(), None, {"dpr": "2", "width": "500"}, NegotiationPolicy())
    assert result.options.dpr == 1.0 and result.options.width == 0 and result.vary == ()


def test_imgproxy_names_for_detection_settings() -> None:
    settings = Settings.from_env(
        {"IMGPROXY_ENABLE_WEBP_DETECTION": "true", "IMGPROXY_ENABLE_AVIF_DETECTION": "1"}
    )
    assert settings.auto_webp and settings.auto_avif
    assert Settings.from_env({"IMGPROXY_AUTO_WEBP": "true"}).auto_webp
    assert Settings.from_env({"PIXELPIPE_PREFERRED_FORMATS": "webp,png"}).preferred_formats == (
        "webp",
        "png",
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PIXELPIPE_PREFERRED_FORMATS": "jpeg,pdf"}, "PIXELPIPE_PREFERRED_FORMATS"),
        ({"PIXELPIPE_AUTO_QUALITY_SSIM": "1.5"}, "PIXELPIPE_AUTO_QUALITY_SSIM"),
        ({"PIXELPIPE_AUTO_QUALITY_SLOPES": "png=0.1"}, "PIXELPIPE_AUTO_QUALITY_SLOPES"),
        ({"PIXELPIPE_AUTO_QUALITY_SLOPES": "jpeg=0"}, "PIXELPIPE_AUTO_QUALITY_SLOPES"),
        ({"PIXELPIPE_AUTO_QUALITY_SLOPES": "avif"}, "PIXELPIPE_AUTO_QUALITY_SLOPES"),
        ({"PIXELPIPE_AVIF_SPEED": "10"}, "PIXELPIPE_AVIF_SPEED"),
        (
            {"PIXELPIPE_AUTO_QUALITY_MIN": "90", "PIXELPIPE_AUTO_QUALITY_MAX": "50"},
            "PIXELPIPE_AUTO_QUALITY_MIN",
        ),
    ],
)
def test_bad_compression_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_near_equal_hints_make_one_variant() -> None:
    """`DPR: 1.0000001`, `1.0000002` or `Width: 3999`, `3998` once made a job each."""
    variants = {
        negotiate(plain(), None, {"dpr": dpr, "width": width}, HINTS).options.canonical()
        for dpr in ("1.0000001", "1.0000002", "1.3", "1.5")
        for width in ("3999", "3998", "3960")
    }
    assert len(variants) == 1
