"""imgproxy's own option-parsing cases (its `options` package tests), as facts.

Each case of imgproxy's processing-options test suite is written down here
as input path (+ settings, + request headers) -> what the parsed result must
be, or that it must be refused, and checked against pixelpipe's parser
through the same path a request takes (signature split, options, Accept and
client-hint negotiation, `expires`). The cases are imgproxy's; the code is
ours. Where pixelpipe has no equivalent of an imgproxy setting, the case is
listed with `DIFFERS` and the reason, and what pixelpipe does instead is
asserted, so the count of cases that hold stays honest.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from proxy.cache import ResultCache
from proxy.errors import ProxyError
from proxy.options.model import GravityType, ProcessingOptions, ResizingType
from proxy.service import ImageService
from proxy.settings import Settings, parse_url_replacements
from proxy.sources import Sources
from tests.conftest import make_settings
from tests.servers import Origin

ORIGIN = "http://images.dev/lorem/ipsum.jpg"
ORIGIN_QUERY = "http://images.dev/lorem/ipsum.jpg?param=value"


def b64(url: str) -> str:
    return base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


Check = Callable[[ProcessingOptions], object]


@dataclass(frozen=True)
class Case:
    name: str  # imgproxy's test name
    path: str
    check: Check | None  # None: the path must be refused
    settings: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    differs: str = ""  # why pixelpipe answers otherwise; then `check` is pixelpipe's answer


def refused(options: ProcessingOptions) -> object:
    raise AssertionError("expected the path to be refused")


BASE: dict[str, Any] = {"base_url": "http://images.dev/"}
# As imgproxy's test writes them, in imgproxy's (Go) replacement syntax.
REPLACEMENTS: dict[str, Any] = {
    "url_replacements": parse_url_replacements(
        "^test://([^/]*)/=test2://images.dev/${1}/dolor/;^test2://=http://"
    )
}
ONLY_PRESETS: dict[str, Any] = {
    "only_presets": True,
    "presets": {"test1": ("blur:0.2",), "test2": ("quality:50",)},
}
ALLOWED: dict[str, Any] = {
    "allowed_processing_options": ("w", "h", "pr"),
    "presets": {"test1": ("blur:0.2",)},
}

CASES = [
    Case("ParseBase64URL", f"/size:100:100/{b64(ORIGIN_QUERY)}.png",
         lambda o: o.source_url == ORIGIN_QUERY and o.format == "png"),
    Case("ParseBase64URLWithFilename", f"/size:100:100/{b64(ORIGIN_QUERY)}.png/puppy.jpg",
         lambda o: o.source_url == ORIGIN_QUERY and o.format == "png",
         settings={"base64_url_includes_filename": True}),
    Case("ParseBase64URLWithoutExtension", f"/size:100:100/{b64(ORIGIN_QUERY)}",
         lambda o: o.source_url == ORIGIN_QUERY and o.format is None),
    Case("ParseBase64URLWithBase", f"/size:100:100/{b64('lorem/ipsum.jpg?param=value')}.png",
         lambda o: o.source_url == "http://images.dev/lorem/ipsum.jpg?param=value"
         and o.format == "png", settings=BASE),
    Case("ParseBase64URLWithReplacement",
         f"/size:100:100/{b64('test://lorem/ipsum.jpg?param=value')}.png",
         lambda o: o.source_url == "http://images.dev/lorem/dolor/ipsum.jpg?param=value"
         and o.format == "png", settings=REPLACEMENTS),
    Case("ParsePlainURL", f"/size:100:100/plain/{ORIGIN}@png",
         lambda o: o.source_url == ORIGIN and o.format == "png"),
    Case("ParsePlainURLWithoutExtension", f"/size:100:100/plain/{ORIGIN}",
         lambda o: o.source_url == ORIGIN and o.format is None),
    Case("ParsePlainURLEscaped",
         "/size:100:100/plain/http:%2F%2Fimages.dev%2Florem%2Fipsum.jpg%3Fparam=value@png",
         lambda o: o.source_url == ORIGIN_QUERY and o.format == "png"),
    Case("ParsePlainURLWithBase", "/size:100:100/plain/lorem/ipsum.jpg@png",
         lambda o: o.source_url == "http://images.dev/lorem/ipsum.jpg" and o.format == "png",
         settings=BASE),
    Case("ParsePlainURLWithReplacement", "/size:100:100/plain/test://lorem/ipsum.jpg@png",
         lambda o: o.source_url == "http://images.dev/lorem/dolor/ipsum.jpg"
         and o.format == "png", settings=REPLACEMENTS),
    Case("ParsePlainURLEscapedWithBase", "/size:100:100/plain/lorem%2Fipsum.jpg%3Fparam=value@png",
         lambda o: o.source_url == "http://images.dev/lorem/ipsum.jpg?param=value",
         settings=BASE),
    Case("ParseWithArgumentsSeparator", f"/size,100,100,1/plain/{ORIGIN}",
         lambda o: (o.width, o.height, o.enlarge) == (100, 100, True),
         settings={"arguments_separator": ","}),
    Case("ParsePathFormat", f"/format:webp/plain/{ORIGIN}", lambda o: o.format == "webp"),
    Case("ParsePathResize", f"/resize:fill:100:200:1/plain/{ORIGIN}",
         lambda o: (o.resizing_type, o.width, o.height, o.enlarge)
         == (ResizingType.FILL, 100, 200, True)),
    Case("ParsePathResizingType", f"/resizing_type:fill/plain/{ORIGIN}",
         lambda o: o.resizing_type is ResizingType.FILL),
    Case("ParsePathSize", f"/size:100:200:1/plain/{ORIGIN}",
         lambda o: (o.width, o.height, o.enlarge) == (100, 200, True)),
    Case("ParsePathWidth", f"/width:100/plain/{ORIGIN}", lambda o: o.width == 100),
    Case("ParsePathHeight", f"/height:100/plain/{ORIGIN}", lambda o: o.height == 100),
    Case("ParsePathEnlarge", f"/enlarge:1/plain/{ORIGIN}", lambda o: o.enlarge),
    Case("ParsePathExtend", f"/extend:1:so:10:20/plain/{ORIGIN}",
         lambda o: o.extend and (o.extend_gravity.type, o.extend_gravity.x, o.extend_gravity.y)
         == (GravityType.SOUTH, 10, 20)),
    Case("ParsePathExtendSmartGravity", f"/extend:1:sm/plain/{ORIGIN}", None),
    Case("ParsePathExtendReplicateGravity", f"/extend:1:re/plain/{ORIGIN}", None),
    Case("ParsePathGravity", f"/gravity:soea/plain/{ORIGIN}",
         lambda o: o.gravity.type is GravityType.SOUTH_EAST),
    Case("ParsePathGravityFocusPoint", f"/gravity:fp:0.5:0.75/plain/{ORIGIN}",
         lambda o: (o.gravity.type, o.gravity.x, o.gravity.y)
         == (GravityType.FOCUS_POINT, 0.5, 0.75)),
    Case("ParsePathGravityReplicate", f"/gravity:re/plain/{ORIGIN}", None),
    Case("ParsePathCrop", f"/crop:100:200/plain/{ORIGIN}",
         lambda o: (o.crop.width, o.crop.height, o.crop.gravity) == (100, 200, None)),
    Case("ParsePathCropGravity", f"/crop:100:200:nowe:10:20/plain/{ORIGIN}",
         lambda o: o.crop.gravity is not None
         and (o.crop.width, o.crop.height, o.crop.gravity.type, o.crop.gravity.x, o.crop.gravity.y)
         == (100, 200, GravityType.NORTH_WEST, 10, 20)),
    Case("ParsePathCropGravityReplicate", f"/crop:100:200:re/plain/{ORIGIN}", None),
    Case("ParsePathQuality", f"/quality:55/plain/{ORIGIN}", lambda o: o.quality == 55),
    Case("ParsePathBackground", f"/background:128:129:130/plain/{ORIGIN}",
         lambda o: o.background == (128, 129, 130)),
    Case("ParsePathBackgroundHex", f"/background:ffddee/plain/{ORIGIN}",
         lambda o: o.background == (0xFF, 0xDD, 0xEE)),
    Case("ParsePathBackgroundDisable", f"/background:fff/background:/plain/{ORIGIN}",
         lambda o: o.background is None),
    Case("ParsePathBlur", f"/blur:0.2/plain/{ORIGIN}", lambda o: o.blur == 0.2),
    Case("ParsePathSharpen", f"/sharpen:0.2/plain/{ORIGIN}", lambda o: o.sharpen == 0.2),
    Case("ParsePathDpr", f"/dpr:2/plain/{ORIGIN}", lambda o: o.dpr == 2),
    Case("ParsePathWatermark", f"/watermark:0.5:soea:10:20:0.6/plain/{ORIGIN}",
         lambda o: o.watermark is not None
         and (o.watermark.opacity, o.watermark.position.value, o.watermark.x, o.watermark.y,
              o.watermark.scale) == (0.5, "soea", 10, 20, 0.6)),
    Case("ParsePathPreset", f"/preset:test1:test2/plain/{ORIGIN}",
         lambda o: (o.resizing_type, o.blur, o.quality) == (ResizingType.FILL, 0.2, 50),
         settings={"presets": {"test1": ("resizing_type:fill",),
                               "test2": ("blur:0.2", "quality:50")}}),
    Case("ParsePathPresetDefault", f"/quality:70/plain/{ORIGIN}",
         lambda o: (o.resizing_type, o.blur, o.quality) == (ResizingType.FILL, 0.2, 70),
         settings={"presets": {"default": ("resizing_type:fill", "blur:0.2", "quality:50")}}),
    Case("ParsePathPresetLoopDetection", f"/preset:test1/plain/{ORIGIN}",
         lambda o: (o.resizing_type, o.blur) == (ResizingType.FILL, 0.2),
         settings={"presets": {"test1": ("resizing_type:fill", "preset:test2"),
                               "test2": ("blur:0.2", "preset:test1")}}),
    Case("ParsePathCachebuster", f"/cachebuster:123/plain/{ORIGIN}",
         lambda o: o.cachebuster == "123"),
    Case("ParsePathStripMetadata", f"/strip_metadata:true/plain/{ORIGIN}",
         lambda o: o.strip_metadata, settings={"strip_metadata": False}),
    Case("ParsePathWebpDetection", f"/plain/{ORIGIN}",
         lambda o: o.accepted_formats[:1] == ("webp",),
         settings={"auto_webp": True}, headers={"accept": "image/webp"}),
    Case("ParsePathWebpEnforce", f"/plain/{ORIGIN}@png",
         lambda o: o.accepted_formats[:1] == ("webp",),
         settings={"enforce_webp": True}, headers={"accept": "image/webp"}),
    Case("ParsePathAvifDetection", f"/plain/{ORIGIN}",
         lambda o: o.accepted_formats[:1] == ("avif",),
         settings={"auto_avif": True}, headers={"accept": "image/avif"}),
    Case("ParsePathAvifEnforce", f"/plain/{ORIGIN}@png",
         lambda o: o.accepted_formats[:1] == ("avif",),
         settings={"enforce_avif": True}, headers={"accept": "image/avif"}),
    Case("ParsePathJxlDetection", f"/plain/{ORIGIN}",
         lambda o: o.accepted_formats[:1] == ("jxl",),
         settings={"auto_jxl": True}, headers={"accept": "image/jxl"}),
    Case("ParsePathJxlEnforce", f"/plain/{ORIGIN}@png",
         lambda o: o.accepted_formats[:1] == ("jxl",),
         settings={"enforce_jxl": True}, headers={"accept": "image/jxl"}),
    Case("ParsePathWidthHeader", f"/plain/{ORIGIN}@png", lambda o: o.width == 100,
         settings={"enable_client_hints": True}, headers={"width": "100"}),
    Case("ParsePathWidthHeaderDisabled", f"/plain/{ORIGIN}@png", lambda o: o.width == 0,
         headers={"width": "100"}),
    Case("ParsePathWidthHeaderRedefine", f"/width:150/plain/{ORIGIN}@png", lambda o: o.width == 150,
         settings={"enable_client_hints": True}, headers={"width": "100"}),
    Case("ParsePathDprHeader", f"/plain/{ORIGIN}@png", lambda o: o.dpr == 2,
         settings={"enable_client_hints": True}, headers={"dpr": "2"}),
    Case("ParsePathDprHeaderDisabled", f"/plain/{ORIGIN}@png", lambda o: o.dpr == 1,
         headers={"dpr": "2"}),
    Case("ParsePathWidthAndDprHeaderCombined", f"/plain/{ORIGIN}@png",
         lambda o: (o.width, o.dpr) == (50, 2),
         settings={"enable_client_hints": True}, headers={"width": "100", "dpr": "2"}),
    Case("ParseSkipProcessing", f"/skp:jpg:png/plain/{ORIGIN}",
         lambda o: set(o.skip_processing) == {"jpeg", "png"}),
    Case("ParseSkipProcessingInvalid", f"/skp:jpg:png:bad_format/plain/{ORIGIN}", None),
    Case("ParseExpires", f"/exp:32503669200/plain/{ORIGIN}", lambda o: o.expires == 32503669200),
    Case("ParseExpiresExpired", f"/exp:1609448400/plain/{ORIGIN}", None),
    Case("ParsePathOnlyPresets", f"/test1:test2/plain/{ORIGIN}@png",
         lambda o: (o.blur, o.quality, o.format, o.source_url) == (0.2, 50, "png", ORIGIN),
         settings=ONLY_PRESETS),
    Case("ParseBase64URLOnlyPresets", f"/test1:test2/{b64(ORIGIN_QUERY)}.png",
         lambda o: (o.blur, o.quality, o.format, o.source_url) == (0.2, 50, "png", ORIGIN_QUERY),
         settings=ONLY_PRESETS),
    Case("ParseAllowedOptions w:100/h:200", f"/w:100/h:200/{b64(ORIGIN_QUERY)}.png",
         lambda o: (o.width, o.height) == (100, 200), settings=ALLOWED),
    Case("ParseAllowedOptions w:100/h:200/blur:10", f"/w:100/h:200/blur:10/{b64(ORIGIN_QUERY)}.png",
         None, settings=ALLOWED),
    Case("ParseAllowedOptions w:100/h:200/pr:test1",
         f"/w:100/h:200/pr:test1/{b64(ORIGIN_QUERY)}.png",
         lambda o: o.blur == 0.2, settings=ALLOWED),
    Case("ParseAllowedOptions w:100/h:200/pr:test1/blur:10",
         f"/w:100/h:200/pr:test1/blur:10/{b64(ORIGIN_QUERY)}.png", None, settings=ALLOWED),
]  # fmt: skip


@pytest.fixture(scope="module")
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as pool:
        yield pool


def parsed(case: Case, executor: ThreadPoolExecutor) -> ProcessingOptions:
    """The options a request for `case.path` gets: signature off, headers negotiated."""
    service = ImageService(Settings(**case.settings), Sources({}), executor, ResultCache(0, 1))
    options, _key, _vary = service.live("/unsafe" + case.path, case.headers, time.time())
    return options


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_imgproxy_case(case: Case, executor: ThreadPoolExecutor) -> None:
    if case.check is None:
        with pytest.raises(ProxyError) as caught:
            parsed(case, executor)
        assert caught.value.status in (400, 403, 404, 422)
        if "blur:10" in case.path:  # imgproxy's words: "Forbidden processing option blur"
            assert caught.value.status == 403
            assert caught.value.reason == "forbidden processing option: blur"
        return
    assert case.check(parsed(case, executor)), case.differs or "the parsed options differ"


# Not among imgproxy's cases, but its reading: under ONLY_PRESETS the first
# segment is the preset list, also when it names one preset (no separator).
SINGLE_PRESET = [
    Case("OnlyPresets one, plain", f"/test1/plain/{ORIGIN}@png",
         lambda o: (o.blur, o.format, o.source_url) == (0.2, "png", ORIGIN),
         settings=ONLY_PRESETS),
    Case("OnlyPresets one, base64", f"/test2/{b64(ORIGIN_QUERY)}.png",
         lambda o: (o.quality, o.format, o.source_url) == (50, "png", ORIGIN_QUERY),
         settings=ONLY_PRESETS),
    Case("OnlyPresets unknown", f"/nope/plain/{ORIGIN}", None, settings=ONLY_PRESETS),
]  # fmt: skip


@pytest.mark.parametrize("case", SINGLE_PRESET, ids=[case.name for case in SINGLE_PRESET])
def test_a_single_preset_under_only_presets(case: Case, executor: ThreadPoolExecutor) -> None:
    if case.check is None:
        with pytest.raises(ProxyError) as caught:
            parsed(case, executor)
        assert caught.value.status == 404 and "preset" in caught.value.reason
        return
    assert case.check(parsed(case, executor))


def test_the_count_of_cases_that_hold() -> None:
    # imgproxy's suite has 63 cases (the allowed-options table counted per row).
    holding = [case for case in CASES if not case.differs]
    assert (len(CASES), len(holding)) == (63, 63)


def test_url_settings_end_to_end(origin: Origin) -> None:
    from tests.conftest import signed
    from tests.images import decode, encode, gradient
    from tests.servers import serve_pixelpipe

    origin.add("/parity/base.jpg", encode(gradient(80, 60), "jpg"))
    settings = make_settings(
        base_url=origin.base + "/parity/",
        allowed_processing_options=("rs", "pr"),
        presets={"small": ("rs:fit:20:20",)},
    )
    with serve_pixelpipe(settings) as base, httpx.Client(timeout=30) as client:
        relative = client.get(base + signed("/rs:fit:40:40/plain/base.jpg"))
        assert relative.status_code == 200 and decode(relative.content).width == 40
        preset = client.get(base + signed("/pr:small/plain/base.jpg"))
        assert preset.status_code == 200 and decode(preset.content).width == 20
        forbidden = client.get(base + signed("/bl:2/plain/base.jpg"))
        assert forbidden.status_code == 403
        assert forbidden.text.strip() == "forbidden processing option: bl"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"IMGPROXY_URL_REPLACEMENTS": "^(=x"}, "URL_REPLACEMENTS"),
        ({"IMGPROXY_URL_REPLACEMENTS": "no-equals-sign"}, "URL_REPLACEMENTS"),
        ({"IMGPROXY_ARGUMENTS_SEPARATOR": "/"}, "ARGUMENTS_SEPARATOR"),
        ({"IMGPROXY_ARGUMENTS_SEPARATOR": "::"}, "ARGUMENTS_SEPARATOR"),
    ],
)
def test_bad_url_settings_name_the_variable(env: dict[str, str], variable: str) -> None:
    from proxy.settings import SettingsError

    with pytest.raises(SettingsError, match=variable):
        Settings.from_env(env)
