"""TIFF, BMP and ICO results (imgproxy writes them too), read back by Pillow, an
independent decoder: libvips in the wheel reads neither BMP nor ICO.
"""

from __future__ import annotations

import io
import itertools

import httpx
import pytest
from PIL import Image

from tests.conftest import signed
from tests.images import BLUE, GREEN, RED, YELLOW, encode, quadrants, with_alpha
from tests.servers import Origin

_names = itertools.count()


def serve(origin: Origin, data: bytes) -> str:
    return origin.add(f"/formats/{next(_names)}.png", data, "image/png")


def fetch(client: httpx.Client, base: str, path: str) -> httpx.Response:
    response = client.get(base + signed(path))
    assert response.status_code == 200, response.text
    return response


def corners(image: Image.Image) -> list[tuple[int, ...]]:
    w, h = image.size
    points = [
        (w // 4, h // 4),
        (3 * w // 4, h // 4),
        (w // 4, 3 * h // 4),
        (3 * w // 4, 3 * h // 4),
    ]
    return [image.getpixel(point)[:3] for point in points]  # type: ignore[index]


@pytest.mark.parametrize(
    ("fmt", "content_type", "pillow_format"),
    [("tiff", "image/tiff", "TIFF"), ("bmp", "image/bmp", "BMP"), ("ico", "image/x-icon", "ICO")],
)
def test_formats_imgproxy_writes(
    client: httpx.Client,
    pixelpipe: str,
    origin: Origin,
    fmt: str,
    content_type: str,
    pillow_format: str,
) -> None:
    url = serve(origin, encode(quadrants(400, 300), "png"))
    answer = fetch(client, pixelpipe, f"/rs:fit:120:120/plain/{url}@{fmt}")
    assert answer.headers["content-type"] == content_type
    assert answer.headers["content-disposition"].endswith(f'.{fmt}"')
    image = Image.open(io.BytesIO(answer.content))
    assert image.format == pillow_format
    assert image.size == (120, 90)
    assert corners(image.convert("RGB")) == [RED, GREEN, BLUE, YELLOW]


@pytest.mark.parametrize("fmt", ["tiff", "bmp", "ico"])
def test_alpha_is_kept(client: httpx.Client, pixelpipe: str, origin: Origin, fmt: str) -> None:
    url = serve(origin, encode(with_alpha(quadrants(40, 30), 128), "png"))
    image = Image.open(io.BytesIO(fetch(client, pixelpipe, f"/plain/{url}@{fmt}").content))
    assert image.mode == "RGBA"
    red = image.getpixel((5, 5))
    assert red[:3] == RED and abs(red[3] - 128) <= 1  # type: ignore[index]


def test_bmp_rows_are_padded_and_bottom_up(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    # 33 pixels x 3 bytes = 99 per row: a 1-byte pad each row; red must stay on top.
    url = serve(origin, encode(quadrants(66, 50), "png"))
    answer = fetch(client, pixelpipe, f"/rs:fit:33:33/plain/{url}@bmp").content
    assert answer[:2] == b"BM" and int.from_bytes(answer[2:6], "little") == len(answer)
    image = Image.open(io.BytesIO(answer))
    assert image.size == (33, 25) and image.mode == "RGB"
    assert corners(image) == [RED, GREEN, BLUE, YELLOW]


def test_ico_is_at_most_256_pixels_as_imgproxy_makes_it(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    url = serve(origin, encode(quadrants(400, 300), "png"))
    answer = fetch(client, pixelpipe, f"/plain/{url}@ico").content
    # One directory entry: 256 is written as 0, as the format says.
    assert answer[:6] == b"\0\0\1\0\1\0" and answer[6] == 0 and answer[7] == 192
    assert answer[22:30] == b"\x89PNG\r\n\x1a\n"  # a PNG-compressed entry
    image = Image.open(io.BytesIO(answer))
    assert image.size == (256, 192)
    assert corners(image.convert("RGB")) == [RED, GREEN, BLUE, YELLOW]


def test_tiff_is_compressed_losslessly(
    client: httpx.Client, pixelpipe: str, origin: Origin
) -> None:
    source = quadrants(400, 300)
    url = serve(origin, encode(source, "png"))
    answer = fetch(client, pixelpipe, f"/plain/{url}@tiff").content
    image = Image.open(io.BytesIO(answer))
    assert image.info.get("compression") == "tiff_adobe_deflate"
    assert len(answer) < 400 * 300 * 3 // 10  # flat colours: deflate shrinks them a lot
    assert image.tobytes() == source.write_to_memory()  # lossless: every pixel as it was
