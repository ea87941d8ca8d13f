from __future__ import annotations

import pytest

from proxy.http_headers import (
    content_disposition,
    default_filename,
    etag_matches,
    make_etag,
    max_age,
)


def test_etag_is_strong_and_stable() -> None:
    assert make_etag("/w:1", "abc") == make_etag("/w:1", "abc")
    assert make_etag("/w:1", "abc") != make_etag("/w:1", "abd")
    assert make_etag("/w:1", "abc").startswith('"')


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('"a"', True),
        ('W/"a"', True),
        ('"b", "a"', True),
        ("*", True),
        ('"b"', False),
    ],
)
def test_etag_matches(header: str | None, matches: bool) -> None:
    assert etag_matches(header, '"a"') is matches


def test_max_age_respects_expiry() -> None:
    assert max_age(3600, None, 1000.0) == 3600
    assert max_age(3600, 0, 1000.0) == 3600
    assert max_age(3600, 1600, 1000.0) == 600
    assert max_age(3600, 900, 1000.0) == 0


@pytest.mark.parametrize(
    ("url", "ext", "name"),
    [
        ("https://shop/cup.jpeg?x=1", "webp", "cup.webp"),
        ("https://shop/dir/", "png", "image.png"),
        ("https://shop/a%20b", "jpg", "a b.jpg"),
        ("local:///x/y.tar.gz", "png", "y.tar.png"),
    ],
)
def test_default_filename(url: str, ext: str, name: str) -> None:
    assert default_filename(url, ext) == name


def test_content_disposition_escapes() -> None:
    assert content_disposition("a.jpg", False) == 'inline; filename="a.jpg"'
    assert content_disposition("a.jpg", True) == 'attachment; filename="a.jpg"'
    tricky = content_disposition('x"\r\nSet-Cookie: a.jpg', False)
    assert "\r" not in tricky and "\n" not in tricky and tricky.count('"') == 2
    assert "filename*=UTF-8''" in content_disposition("böne.jpg", False)
