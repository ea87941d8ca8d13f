"""End to end: format negotiation, client hints, byte budgets, quality:auto and /info.

Behaviour only (formats, sizes, headers, quality metrics); timings live in bench/.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

import proxy.pipeline.encode as encoding
from proxy.pipeline.auto_quality import AUTO_QUALITY_SLOPES
from proxy.pipeline.encode import EncodeRequest, EncoderSettings
from tests.conftest import make_settings, signed
from tests.images import (
    decode,
    encode,
    loader_format,
    photo_like,
    quadrants,
    ssim_reference,
    with_alpha,
)
from tests.servers import Origin, running_apps, serve_pixelpipe
from tests.test_formats_out import read_back

_names = itertools.count()
CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
WEBP_ONLY = "image/webp,image/png,image/*;q=0.8"


def serve(origin: Origin, data: bytes, content_type: str = "image/jpeg") -> str:
    return origin.add(f"/cmp/{next(_names)}", data, content_type)


def get(client: httpx.Client, base: str, path: str, **headers: str) -> httpx.Response:
    response = client.get(base + signed(path), headers=headers)
    assert response.status_code == 200, response.text
    return response


@pytest.fixture(scope="module")
def negotiating() -> Iterator[str]:
    with serve_pixelpipe(make_settings(auto_webp=True, auto_avif=True)) as base:
        yield base


@pytest.fixture(scope="module")
def photo(origin: Origin) -> str:
    return serve(origin, encode(photo_like(480, 320), "jpg", Q=95))


# --- format negotiation -------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "fmt"),
    [(CHROME, "avif"), (WEBP_ONLY, "webp"), ("*/*", "jpeg"), ("", "jpeg")],
)
def test_format_follows_accept_with_vary(
    client: httpx.Client, negotiating: str, photo: str, accept: str, fmt: str
) -> None:
    response = get(client, negotiating, f"/rs:fit:200:200/plain/{photo}", accept=accept)
    image = decode(response.content)
    assert loader_format(image) == fmt
    assert response.headers["content-type"] == f"image/{fmt}"
    assert (image.width, image.height) == (200, 133)
    assert response.headers["vary"] == "Accept"


def test_a_format_in_the_url_wins_and_does_not_vary(
    client: httpx.Client, negotiating: str, photo: str
) -> None:
    response = get(client, negotiating, f"/rs:fit:200:200/plain/{photo}@png", accept=CHROME)
    assert loader_format(decode(response.content)) == "png"
    assert "vary" not in response.headers


def test_enforced_webp_overrides_the_url(client: httpx.Client, origin: Origin, photo: str) -> None:
    with serve_pixelpipe(make_settings(enforce_webp=True)) as base:
        enforced = get(client, base, f"/rs:fit:100:100/plain/{photo}@png", accept=CHROME)
        assert loader_format(decode(enforced.content)) == "webp"
        assert enforced.headers["vary"] == "Accept"
        fallback = get(client, base, f"/rs:fit:100:100/plain/{photo}@png", accept="*/*")
        assert loader_format(decode(fallback.content)) == "png"


def test_negotiated_results_are_cached_apart(
    client: httpx.Client, negotiating: str, origin: Origin
) -> None:
    url = serve(origin, encode(photo_like(300, 200, seed=3), "jpg"))
    path = f"/rs:fit:150:150/plain/{url}"
    service = running_apps[negotiating].state.service
    runs = service.pipeline_runs
    formats = []
    etags = set()
    for accept in (CHROME, WEBP_ONLY, "*/*", CHROME, WEBP_ONLY, "*/*"):
        response = get(client, negotiating, path, accept=accept)
        formats.append(loader_format(decode(response.content)))
        etags.add(response.headers["etag"])
    assert formats == ["avif", "webp", "jpeg"] * 2
    assert len(etags) == 3
    assert service.pipeline_runs - runs == 3  # the second round came from the cache
    assert origin.hits[url.removeprefix(origin.base)] == 1  # one source for all three


def test_animation_is_never_made_avif(
    client: httpx.Client, negotiating: str, origin: Origin
) -> None:
    frames = [quadrants(40, 30).rot90() if i % 2 else quadrants(30, 40) for i in range(4)]
    strip = pyvips.Image.arrayjoin([f.crop(0, 0, 30, 30) for f in frames], across=1)
    strip = strip.copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", 30)
    url = serve(origin, strip.gifsave_buffer(), "image/gif")
    response = get(client, negotiating, f"/plain/{url}", accept=CHROME)
    image = pyvips.Image.new_from_buffer(response.content, "", n=-1)
    assert loader_format(image) == "webp"
    assert image.get("n-pages") == 4


def test_preferred_formats_carry_alpha(client: httpx.Client, origin: Origin) -> None:
    # A WebP source with alpha, preferred formats jpeg,png: JPEG has no alpha, so PNG.
    url = serve(origin, encode(with_alpha(quadrants(60, 40), 128), "webp"), "image/webp")
    with serve_pixelpipe(make_settings(preferred_formats=("jpeg", "png"))) as base:
        image = decode(get(client, base, f"/plain/{url}").content)
    assert loader_format(image) == "png" and image.hasalpha()


# --- client hints ---------------------------------------------------------------


def test_client_hints_set_width_and_dpr(client: httpx.Client, photo: str) -> None:
    with serve_pixelpipe(make_settings(enable_client_hints=True)) as base:
        path = f"/rs:fit/plain/{photo}@jpg"
        by_dpr = get(client, base, f"/rs:fit:100:0/plain/{photo}@jpg", dpr="2")
        assert decode(by_dpr.content).width == 200
        by_width = get(client, base, path, **{"sec-ch-width": "240"})
        assert decode(by_width.content).width == 250  # rounded up to 50 device px
        both = get(client, base, path, **{"sec-ch-width": "300", "sec-ch-dpr": "2"})
        assert decode(both.content).width == 300  # 150 CSS px at DPR 2
        plain = get(client, base, path)
        assert decode(plain.content).width == 480
        for response in (by_dpr, by_width, both, plain):
            assert set(response.headers["vary"].split(", ")) == {
                "Sec-CH-DPR",
                "DPR",
                "Sec-CH-Width",
                "Width",
            }
            assert "Sec-CH-DPR" in response.headers["accept-ch"]


# --- byte budgets -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jpg", "webp", "avif"])
def test_max_bytes_is_met_by_quality_with_few_encodes(
    client: httpx.Client, pixelpipe: str, photo: str, fmt: str
) -> None:
    free = get(client, pixelpipe, f"/q:90/plain/{photo}@{fmt}")
    budget = len(free.content) // 2
    response = get(client, pixelpipe, f"/q:90/mb:{budget}/plain/{photo}@{fmt}")
    image = decode(response.content)
    assert len(response.content) <= budget
    assert (image.width, image.height) == (480, 320)  # quality alone was enough
    assert "x-pixelpipe-downscaled" not in response.headers
    quality = int(response.headers["x-pixelpipe-quality"])
    assert 10 <= quality < 90
    # Bisection: one first try plus about log2(90 - 10) tries, not one per step.
    assert int(response.headers["x-pixelpipe-encodes"]) <= 2 + math.ceil(math.log2(90))
    # It is the highest quality that fits: one step up would not.
    above = get(client, pixelpipe, f"/q:{quality + 1}/plain/{photo}@{fmt}")
    assert len(above.content) > budget


@pytest.mark.parametrize("fmt", ["jpg", "webp", "png", "gif", "tiff"])
def test_max_bytes_downscales_when_quality_cannot(
    client: httpx.Client, pixelpipe: str, photo: str, fmt: str
) -> None:
    # Half of what the lowest quality max_bytes may use (10) makes: too small for quality.
    budget = len(get(client, pixelpipe, f"/q:10/plain/{photo}@{fmt}").content) // 2
    response = get(client, pixelpipe, f"/mb:{budget}/plain/{photo}@{fmt}")
    image = decode(response.content)
    assert len(response.content) <= budget
    scale = float(response.headers["x-pixelpipe-downscaled"])
    assert 0 < scale < 1
    assert image.width < 480 and abs(image.width / image.height - 1.5) < 0.05
    assert abs(image.width - 480 * scale) <= 1
    if fmt in ("jpg", "webp"):
        # Far over budget: the floor is tried at once, no bisection at full size.
        # First encode + floor + one or two downscales + one bisection.
        encodes = int(response.headers["x-pixelpipe-encodes"])
        assert encodes <= 4 + math.ceil(math.log2(90)), encodes


# --- quality:auto -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jpg", "webp", "avif", "jxl", "heic"])
def test_auto_quality_is_where_bytes_stop_buying_ssim(
    client: httpx.Client, pixelpipe: str, photo: str, fmt: str, tmp_path: Path
) -> None:
    """The rule's decision, checked with SSIM computed independently of proxy/.

    quality:auto maximises SSIM - slope * bits per pixel (the format's shipped
    slope). Measured here over qualities 30..90 with tests.images'
    ssim_reference and the bytes the server sends for each fixed quality, the
    chosen quality must be within 0.006 of the best value found. The search
    runs on a sample of the image (a quarter of its rows at 300 px; AVIF
    probes at libaom's fastest speed) to cost one encode and a half (issue 26),
    so its choice is an estimate: on this image and the three photos in
    proxy/samples at 300 px, 20 format-image pairs, it came within 0.0018 of
    the best value in 18 and 0.0048-0.0051 in two (AVIF on jetty.jpg, JPEG XL
    on this image, whose curve is bumpy). Whether the choices save bytes over
    a set of images is measured by bench/auto_quality.py (COMPRESSION.md).
    """
    slope = AUTO_QUALITY_SLOPES["jpeg" if fmt == "jpg" else fmt]
    auto = get(client, pixelpipe, f"/rs:fit:300:300/q:auto/plain/{photo}@{fmt}")
    quality = int(auto.headers["x-pixelpipe-quality"])
    assert 30 <= quality <= 90
    # Probes of the sample (at most 4, and the floor's) and the answer.
    assert int(auto.headers["x-pixelpipe-encodes"]) <= 6
    # The unencoded processed image: the same pipeline, written losslessly.
    reference = decode(get(client, pixelpipe, f"/rs:fit:300:300/plain/{photo}@png").content)
    pixels = reference.width * reference.height

    def read(body: bytes) -> pyvips.Image:
        # JPEG XL and HEIC read back by libjxl's and libheif's own tools (Debian's).
        return read_back(fmt, body, tmp_path) if fmt in ("jxl", "heic") else decode(body)

    def value(body: bytes) -> float:
        return ssim_reference(reference, read(body)[:3]) - slope * 8 * len(body) / pixels

    fixed = get(client, pixelpipe, f"/rs:fit:300:300/q:{quality}/plain/{photo}@{fmt}")
    assert fixed.content == auto.content  # the answer is a real encode at that quality
    values = {
        q: value(get(client, pixelpipe, f"/rs:fit:300:300/q:{q}/plain/{photo}@{fmt}").content)
        for q in range(30, 91, 4)
    }
    assert value(auto.content) >= max(values.values()) - 0.006, (quality, values)


def test_auto_quality_analyses_a_source_once_for_all_its_widths(
    client: httpx.Client, origin: Origin
) -> None:
    """A srcset asks one picture at five widths: the first searches (probes on a
    sample, then the answer), the others take its quality in one encode. Another
    picture of the same source (other options) searches again."""
    url = serve(origin, encode(photo_like(1400, 900, seed=7), "jpg", Q=95))
    with serve_pixelpipe(make_settings()) as base:
        answers = [
            get(client, base, f"/rs:fit:{width}:{width}/q:auto/plain/{url}@webp")
            for width in (1200, 960, 640, 480, 320)
        ]
        blurred = get(client, base, f"/rs:fit:640:640/bl:2/q:auto/plain/{url}@webp")
    first, *others = answers
    assert int(first.headers["x-pixelpipe-encodes"]) >= 3
    quality = first.headers["x-pixelpipe-quality"]
    for answer in others:
        assert answer.headers["x-pixelpipe-encodes"] == "1"
        assert answer.headers["x-pixelpipe-quality"] == quality
    assert [decode(a.content).width for a in answers] == [1200, 960, 640, 480, 320]
    assert int(blurred.headers["x-pixelpipe-encodes"]) >= 3


def test_auto_quality_follows_its_slope_and_floor(client: httpx.Client, photo: str) -> None:
    """A lower slope buys more quality; a floor above every probe takes the maximum."""
    path = f"/rs:fit:300:300/q:auto/plain/{photo}@jpg"
    chosen = {}
    for slope in ("0.01", "0.2"):
        env = {"auto_quality_slopes": {"jpeg": float(slope)}}
        with serve_pixelpipe(make_settings(**env)) as base:
            chosen[slope] = int(get(client, base, path).headers["x-pixelpipe-quality"])
    assert chosen["0.01"] > chosen["0.2"]
    with serve_pixelpipe(make_settings(auto_quality_ssim=0.999, auto_quality_max=85)) as base:
        floored = get(client, base, path)
    assert floored.headers["x-pixelpipe-quality"] == "85"


def test_auto_quality_as_the_default(client: httpx.Client, photo: str) -> None:
    with serve_pixelpipe(make_settings(auto_quality=True)) as base:
        auto = get(client, base, f"/rs:fit:300:300/plain/{photo}@jpg")
        fixed = get(client, base, f"/rs:fit:300:300/q:80/plain/{photo}@jpg")
    assert int(auto.headers["x-pixelpipe-encodes"]) > 1
    assert fixed.headers["x-pixelpipe-quality"] == "80"
    assert fixed.headers["x-pixelpipe-encodes"] == "1"


# --- /info --------------------------------------------------------------------------


def test_info_numbers_match_pyvips(client: httpx.Client, pixelpipe: str, photo: str) -> None:
    options = "rs:fit:240:240/q:60"
    info = client.get(pixelpipe + "/info" + signed(f"/{options}/plain/{photo}@jpg"))
    assert info.status_code == 200, info.text
    report = info.json()
    source_bytes = encode(photo_like(480, 320), "jpg", Q=95)
    assert report["source"] == {
        "format": "jpeg",
        "width": 480,
        "height": 320,
        "bytes": len(source_bytes),
        "orientation": 1,
        "frames": 1,
        "faces": None,  # no smart gravity asked: no detection ran
    }
    served = get(client, pixelpipe, f"/{options}/plain/{photo}@jpg").content
    reference = decode(get(client, pixelpipe, f"/{options}/plain/{photo}@png").content)
    result = decode(served)
    result_report = report["result"]
    assert result_report["bytes"] == len(served)
    assert (result_report["width"], result_report["height"]) == (240, 160)
    assert result_report["quality"] == 60
    difference = reference.cast("float") - result.cast("float")
    mse = (difference * difference).avg()
    assert result_report["mse"] == pytest.approx(mse, rel=1e-6)
    assert result_report["psnr"] == pytest.approx(10 * math.log10(255**2 / mse), rel=1e-6)
    assert result_report["ssim"] == pytest.approx(ssim_reference(reference, result), abs=1e-6)
    # SSIMULACRA2 beside SSIM, as an independent implementation scores the same pair.
    from tests.test_ssimulacra2 import theirs, transposed

    expected = theirs(transposed(reference), transposed(result))
    # /info rounds to 0.001.
    assert result_report["ssimulacra2"] == pytest.approx(expected, abs=0.002)
    assert result_report["compression_ratio"] == pytest.approx(
        240 * 160 * 3 / len(served), rel=1e-3
    )


def test_info_of_a_lossless_result(client: httpx.Client, pixelpipe: str, photo: str) -> None:
    report = client.get(pixelpipe + "/info" + signed(f"/rs:fit:100:100/plain/{photo}@png")).json()
    assert report["result"]["mse"] == 0
    assert report["result"]["ssim"] == pytest.approx(1.0)
    assert report["result"]["psnr"] == 100.0  # the cap for identical images
    assert report["result"]["ssimulacra2"] == pytest.approx(100.0)


def test_info_is_signed_like_images(client: httpx.Client, pixelpipe: str, photo: str) -> None:
    bad = client.get(
        pixelpipe + f"/info/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/rs:fit:10:10/plain/{photo}"
    )
    assert bad.status_code == 403
    assert len(bad.text.splitlines()) == 1
    assert client.get(pixelpipe + "/health").status_code == 200


def test_webp_from_a_lossless_source_is_lossless_when_smaller(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    url = serve(origin, encode(quadrants(200, 100), "png"), "image/png")
    response = get(client, pixelpipe, f"/plain/{url}@webp")
    # lossy, lossless at effort 0 on a sample (the estimate), then lossless
    assert response.headers["x-pixelpipe-encodes"] == "3"
    assert response.content[12:16] == b"VP8L"
    lossless = decode(response.content)
    reference = decode(get(client, pixelpipe, f"/plain/{url}@png").content)
    difference = (lossless.cast("int") - reference.cast("int")).abs().max()
    assert difference == 0
    lossy = get(client, pixelpipe, f"/q:80/plain/{url}@jpg")
    assert len(response.content) < len(lossy.content)


def test_webp_from_a_png_photograph_skips_the_hopeless_lossless_encode(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    # A photograph: lossless would take many times the lossy bytes, which the
    # estimate from a sample sees, so no full lossless encode is made.
    url = serve(origin, encode(photo_like(900, 600), "png"), "image/png")
    response = get(client, pixelpipe, f"/plain/{url}@webp")
    assert response.headers["x-pixelpipe-encodes"] == "2"  # lossy, then the estimate
    assert response.content[12:16] == b"VP8 "  # lossy
    reference = decode(get(client, pixelpipe, f"/plain/{url}@png").content)
    served = decode(response.content)
    assert (served.width, served.height) == (900, 600)
    assert (served.cast("int") - reference.cast("int")).abs().avg() < 3
    lossless = reference.webpsave_buffer(lossless=True, effort=4)
    assert len(lossless) > 4 * len(response.content)


@pytest.mark.parametrize(
    ("picture", "expected"),
    [
        # (lossless, probe) of each encode: the lossy answer, the estimate, and
        # the full lossless encode only where the estimate gives it a chance.
        (photo_like(600, 400), [(False, False), (True, True)]),
        (quadrants(600, 400), [(False, False), (True, True), (True, False)]),
    ],
    ids=["photograph", "flat graphic"],
)
def test_the_lossless_estimate_decides_whether_lossless_is_tried(
    monkeypatch: pytest.MonkeyPatch, picture: pyvips.Image, expected: list[tuple[bool, bool]]
) -> None:
    calls: list[tuple[bool, bool]] = []
    real = encoding.encode

    def spy(*args: object, **kwargs: object) -> bytes:
        lossless = args[5] if len(args) > 5 else kwargs.get("lossless", False)
        calls.append((bool(lossless), bool(kwargs.get("probe", False))))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(encoding, "encode", spy)
    request = EncodeRequest(format="webp", quality=80, keep="none", lossless_source=True)
    encoding.encode_result(picture.copy_memory(), request, EncoderSettings())
    assert calls == expected


def test_jpeg_encoder_follows_the_output_size(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    """Thumbnails: a plain baseline encode; from ~500x500 up: progressive with trellis."""
    source = photo_like(1600, 1200)
    url = serve(origin, encode(source, "jpg", Q=95))
    small = get(client, pixelpipe, f"/rs:fit:300:0/q:80/plain/{url}@jpg").content
    large = get(client, pixelpipe, f"/rs:fit:1000:0/q:80/plain/{url}@jpg").content
    small_image, large_image = decode(small), decode(large)
    assert (small_image.width, large_image.width) == (300, 1000)
    assert "interlaced" not in small_image.get_fields()
    assert large_image.get("interlaced") == 1
    # The small one is the plain encode of the same pixels (no trellis), byte for byte
    # apart from metadata: what pyvips writes for the resized image at q80.
    reference = source.thumbnail_image(300).jpegsave_buffer(Q=80, optimize_coding=True, keep="none")
    assert abs(len(small) - len(reference)) < 0.02 * len(reference)
    # Trellis at q80 spends fewer bytes than a plain encode of the large result.
    plain_large = source.thumbnail_image(1000).jpegsave_buffer(
        Q=80, optimize_coding=True, keep="none"
    )
    assert len(large) < len(plain_large)
