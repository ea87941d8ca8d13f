"""Signatures end to end, and imgproxy's documentation URLs taken literally."""

from __future__ import annotations

import itertools

import httpx
import pytest

from proxy.options import ParserConfig, parse_options, split_path
from proxy.options.url import split_signature
from signing import KeyRing, Signer
from tests.conftest import KEY, OLD_KEY, OLD_SALT, SALT, signed
from tests.images import decode, encode, quadrants
from tests.servers import Origin

_names = itertools.count()


@pytest.fixture(scope="module")
def image_url(origin: Origin) -> str:
    return origin.add(f"/sig/{next(_names)}.png", encode(quadrants(200, 100), "png"), "image/png")


def test_valid_signature_is_served(client: httpx.Client, pixelpipe: str, image_url: str) -> None:
    assert client.get(pixelpipe + signed(f"/w:50/plain/{image_url}")).status_code == 200


@pytest.mark.parametrize(
    "mangle",
    [
        lambda p: "/insecure" + p[p.index("/", 1) :],
        lambda p: "/_" + p[p.index("/", 1) :],
        lambda p: p.replace("w:50", "w:51"),  # options changed after signing
        lambda p: p[:5] + ("A" if p[5] != "A" else "B") + p[6:],  # one character off
        lambda p: p.replace("/w:50", "/w:50/q:10"),
    ],
    ids=["insecure", "underscore", "tampered-option", "one-char", "added-option"],
)
def test_bad_signatures_are_403(
    client: httpx.Client, pixelpipe: str, image_url: str, mangle
) -> None:  # type: ignore[no-untyped-def]
    response = client.get(pixelpipe + mangle(signed(f"/w:50/plain/{image_url}")))
    assert response.status_code == 403
    assert response.text == "invalid signature\n"


def test_signature_from_another_key_is_403(
    client: httpx.Client, pixelpipe: str, image_url: str
) -> None:
    response = client.get(pixelpipe + signed(f"/w:50/plain/{image_url}", OLD_KEY, OLD_SALT))
    assert response.status_code == 403


def test_rotated_keys_accept_both_pairs(
    client: httpx.Client, pixelpipe_with, image_url: str
) -> None:  # type: ignore[no-untyped-def]
    keys = (bytes.fromhex(KEY), bytes.fromhex(OLD_KEY))
    salts = (bytes.fromhex(SALT), bytes.fromhex(OLD_SALT))
    with pixelpipe_with(keys=keys, salts=salts) as base:
        new = client.get(base + signed(f"/w:50/plain/{image_url}"))
        old = client.get(base + signed(f"/w:50/plain/{image_url}", OLD_KEY, OLD_SALT))
        mixed = client.get(base + signed(f"/w:50/plain/{image_url}", KEY, OLD_SALT))
    assert (new.status_code, old.status_code, mixed.status_code) == (200, 200, 403)


def test_without_keys_any_signature_segment_is_accepted(
    client: httpx.Client,
    pixelpipe_with,
    image_url: str,  # type: ignore[no-untyped-def]
) -> None:
    with pixelpipe_with(keys=(), salts=()) as base:
        for signature in ("insecure", "_", "anything"):
            response = client.get(f"{base}/{signature}/w:50/plain/{image_url}")
            assert response.status_code == 200
            assert decode(response.content).width == 50


def test_truncated_signature_size(client: httpx.Client, pixelpipe_with, image_url: str) -> None:  # type: ignore[no-untyped-def]
    path = f"/w:50/plain/{image_url}"
    short = "/" + Signer(KEY, SALT, size=8).sign(path) + path
    with pixelpipe_with(signature_size=8) as base:
        assert client.get(base + short).status_code == 200
        assert client.get(base + signed(path)).status_code == 403


# imgproxy's documentation ("Processing an image" and "Signing the URL"), verbatim.
DOCS_KEY, DOCS_SALT = "736563726574", "68656C6C6F"
DOCS_URLS = [
    "/oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png",
    "/AfrOrF3gWeDA6VOlDG4TzxMv39O7MXnF4CXpKUwGqRM/preset:sharp/resize:fill:300:400:0/gravity:sm/plain/http://example.com/images/curiosity.jpg@png",
    "/AfrOrF3gWeDA6VOlDG4TzxMv39O7MXnF4CXpKUwGqRM/pr:sharp/rs:fill:300:400:0/g:sm/plain/http://example.com/images/curiosity.jpg@png",
    "/AfrOrF3gWeDA6VOlDG4TzxMv39O7MXnF4CXpKUwGqRM/pr:sharp/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png",
]


@pytest.mark.parametrize("url", DOCS_URLS)
def test_documentation_urls_parse_to_the_same_options(url: str) -> None:
    config = ParserConfig(presets={"sharp": ("q:90",)})
    split = split_path(url)
    options = parse_options(split.option_segments, split.source_url, split.extension, config)
    assert options.source_url == "http://example.com/images/curiosity.jpg"
    assert (options.width, options.height, options.format) == (300, 400, "png")
    assert options.resizing_type.value == "fill" and options.gravity.type.value == "sm"


def test_documentation_signature_verifies() -> None:
    ring = KeyRing.from_pairs([DOCS_KEY], [DOCS_SALT])
    signature, path = split_signature(DOCS_URLS[0])
    assert ring.verify(signature, path)


def test_documentation_style_urls_against_a_real_origin(
    client: httpx.Client, pixelpipe: str, image_url: str
) -> None:
    # The documentation's shapes with our origin in place of example.com.
    import base64

    encoded = base64.urlsafe_b64encode(image_url.encode()).rstrip(b"=").decode()
    pieces = "/".join(encoded[i : i + 16] for i in range(0, len(encoded), 16))
    for path in (
        f"/rs:fill:300:400:0/g:sm/{pieces}.png",
        f"/resize:fill:300:400:0/gravity:sm/plain/{image_url}@png",
        f"/g:sm/rs:fill:300:400:0/plain/{image_url}@png",
    ):
        response = client.get(pixelpipe + signed(path))
        assert response.status_code == 200, path
        image = decode(response.content)
        # fill never enlarges: a 200x100 source smaller than 300x400 stays whole
        # (fill-down is the type that would cut it to 3:4).
        assert (image.width, image.height) == (200, 100)


@pytest.mark.parametrize(
    ("variables", "imgproxy_unsigned", "summary"),
    [
        # What a thumbor user moving over sets: imgproxy URLs are closed too.
        ({"SECURITY_KEY": "fake-thumbor-key"}, 403, "imgproxy URLs refused"),
        (
            {"SECURITY_KEY": "fake-thumbor-key", "PIXELPIPE_ALLOW_UNSIGNED": "true"},
            200,
            "imgproxy URLs NOT signed",
        ),
        ({}, 200, "imgproxy URLs NOT signed"),  # no key at all: open, as imgproxy, and said
        ({"PIXELPIPE_KEY": KEY, "PIXELPIPE_SALT": SALT}, 403, "imgproxy URLs signed (1 key pair)"),
        (
            {
                "PIXELPIPE_KEY": KEY,
                "PIXELPIPE_SALT": SALT,
                "PIXELPIPE_THUMBOR_ALLOW_UNSAFE": "true",
            },
            403,
            "thumbor URLs only /unsafe/, NOT signed (THUMBOR_ALLOW_UNSAFE)",
        ),
    ],
)
def test_signing_is_all_or_nothing(
    variables: dict[str, str], imgproxy_unsigned: int, summary: str, tmp_path, image_url: str
) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    from tests.ports import free_port
    from tests.servers import wait_until_serving
    from tests.test_cli import PIXELPIPE, clean_env

    port = free_port()
    log = tmp_path / "stderr"
    env = clean_env(PIXELPIPE_ALLOW_LOOPBACK_SOURCE_ADDRESSES="true", **variables)
    with log.open("w") as sink:
        process = subprocess.Popen(
            [PIXELPIPE, "serve", "--port", str(port), "--workers", "1"], env=env, stderr=sink
        )
        try:
            wait_until_serving(f"http://127.0.0.1:{port}", process)
            answer = httpx.get(f"http://127.0.0.1:{port}/x/w:40/plain/{image_url}", timeout=30)
            assert answer.status_code == imgproxy_unsigned
            if imgproxy_unsigned == 200:
                assert decode(answer.content).width == 40
        finally:
            process.terminate()
            process.wait(timeout=30)
    lines = [line for line in log.read_text().splitlines() if "URL signatures:" in line]
    assert len(lines) == 1 and summary in lines[0]
    assert ("WARNING" in lines[0]) == ("NOT signed" in lines[0])
