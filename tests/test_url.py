from __future__ import annotations

import base64

import pytest

from proxy.errors import InvalidURL
from proxy.options.url import split_path, split_signature


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def test_plain_source_with_extension() -> None:
    split = split_path("/sig/rs:fill:300:200/q:80/plain/https://shop.example.com/cup.jpg@webp")
    assert split.signature == "sig"
    assert split.signed_path == "/rs:fill:300:200/q:80/plain/https://shop.example.com/cup.jpg@webp"
    assert split.option_segments == ("rs:fill:300:200", "q:80")
    assert split.source_url == "https://shop.example.com/cup.jpg"
    assert split.extension == "webp"


def test_plain_source_is_percent_decoded() -> None:
    split = split_path("/_/w:10/plain/http://a.example/x%20y.jpg%3Fv%3D1%40hi")
    assert split.source_url == "http://a.example/x y.jpg?v=1@hi"
    assert split.extension is None


def test_base64_source_split_by_slashes_with_extension() -> None:
    # imgproxy's documentation example.
    split = split_path(
        "/sig/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png"
    )
    assert split.source_url == "http://example.com/images/curiosity.jpg"
    assert split.extension == "png"


def test_base64_source_with_padding_and_no_options() -> None:
    encoded = base64.urlsafe_b64encode(b"http://a.example/b.png").decode()
    split = split_path(f"/insecure/{encoded}")
    assert split.option_segments == ()
    assert split.source_url == "http://a.example/b.png"


def test_signature_split_keeps_the_raw_path() -> None:
    assert split_signature("/abc/w:1/plain/x%2Fy") == ("abc", "/w:1/plain/x%2Fy")


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "",
        "/onlysignature",
        "/sig/",
        "/sig/w:100",
        "/sig/w:100/plain/",
        "/sig/plain/a@b@c",
        "/sig/w:100//plain/http://a/b.jpg",
        "/sig/" + b64("http://a/b") + ".png.jpg",
        "/sig/not*base64!",
        "/sig/" + "%ff%fe",
        "/sig/plain/http://a/%ff.jpg",
    ],
)
def test_malformed_paths_are_invalid_urls(path: str) -> None:
    with pytest.raises(InvalidURL):
        split_path(path)
