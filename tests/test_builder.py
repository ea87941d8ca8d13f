"""The client side: UrlBuilder, srcset/picture markup, the Jinja2 hooks, `pixelpipe url`.

The builder is checked against the server (its URLs parse and verify, and
mean what they say), against itself (one spelling per set of options), and
against imgproxy's official Node URL builder: reference URLs made once with
@imgproxy/imgproxy-node (tests/data/imgproxy_node) must give the same image
as our builder's URL for the same options.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.options import ParserConfig, parse_options, split_path
from proxy.options.parse import OPTIONS
from proxy.options.url import split_signature
from signing import KeyRing, UrlBuilder, picture, srcset, srcset_density
from signing.jinja import install
from signing.options import BY_SPELLING, OPTION_NAMES
from tests.conftest import KEY, SALT, make_settings
from tests.images import decode, encode, gradient, quadrants, with_alpha
from tests.servers import serve_pixelpipe

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "tests" / "data" / "imgproxy_node"
BUILDER = UrlBuilder(key=KEY, salt=SALT)
RING = KeyRing.from_pairs([KEY], [SALT])


def parse(path: str):  # type: ignore[no-untyped-def]
    """What the server makes of a built path (signature checked first, as it does)."""
    signature, signed_part = split_signature(path)
    assert RING.verify(signature, signed_part), path
    split = split_path(path)
    return parse_options(split.option_segments, split.source_url, split.extension, ParserConfig())


# --- the package on its own ----------------------------------------------------


def test_imports_with_only_the_standard_library_and_itsdangerous(tmp_path: Path) -> None:
    """`python -S` sees no site-packages: only a copy of signing/ and itsdangerous."""
    import itsdangerous

    shutil.copytree(ROOT / "signing", tmp_path / "signing")
    shutil.copytree(Path(itsdangerous.__file__).parent, tmp_path / "itsdangerous")
    code = (
        "import sys; from signing import UrlBuilder, picture; "
        "b = UrlBuilder('https://img.example.com', key='aa', salt='bb'); "
        "print(b.url('https://shop/cup.jpg', width=300)); "
        "print(picture(b, 'https://shop/cup.jpg', [100], width=100, height=50, alt='x')[:9]); "
        "heavy = {'pyvips', 'starlette', 'httpx', 'uvicorn', 'proxy', 'jinja2'}; "
        "heavy &= set(sys.modules); "
        "assert not heavy, heavy"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code],
        env={"PYTHONPATH": str(tmp_path), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    url, markup = result.stdout.splitlines()
    assert url.startswith("https://img.example.com/") and url.endswith(
        "/w:300/plain/https://shop/cup.jpg"
    )
    assert markup == "<picture>"


def test_every_declared_option_has_a_parser_and_nothing_else() -> None:
    # Names are declared once in signing.options; the server's table adds parsers.
    server = {spec.name.replace("-", "_"): {spec.name, *spec.aliases} for spec in OPTIONS}
    ours = {option.name: set(option.aliases) for option in OPTION_NAMES}
    assert ours == server
    # The spelling written is the one the server writes in its canonical form.
    for option in OPTION_NAMES:
        assert BY_SPELLING[option.short] is option


def test_documented_example() -> None:
    images = UrlBuilder("https://img.example.com/", key=KEY, salt=SALT)
    thumb = images.with_options(resize=("fill", 300, 200), quality=80)
    url = thumb.url("https://shop.example.com/cup.jpg", format="webp")
    path = url.removeprefix("https://img.example.com")
    assert path.endswith("/rs:fill:300:200/q:80/plain/https://shop.example.com/cup.jpg@webp")
    options = parse(path)
    assert (options.width, options.height, options.quality, options.format) == (
        300,
        200,
        80,
        "webp",
    )
    assert options.resizing_type.value == "fill"
    # Immutable: the shared builder did not change.
    assert images.options == () and thumb.options != ()


def test_values_are_written_as_the_server_reads_them() -> None:
    options = parse(
        BUILDER.path(
            "https://shop/a b?x=1&y=2",
            gravity=("fp", 0.5, 0.25),
            background=(255, 136, 0),
            trim=(10, None, True),
            padding=(1, 2, 3, 4),
            flip=(True, False),
            format_quality={"webp": 70, "avif": 50},
            filename="Café menu.png",
            enlarge=True,
            blur=0.5,
            preset=None,  # None: not written at all
        )
    )
    assert options.source_url == "https://shop/a b?x=1&y=2"
    assert (options.gravity.type.value, options.gravity.x, options.gravity.y) == ("fp", 0.5, 0.25)
    assert options.background == (255, 136, 0)
    assert (
        options.trim is not None and options.trim.equal_horizontal and options.trim.colour is None
    )
    assert options.padding == (1, 2, 3, 4)
    assert (options.flip_horizontal, options.flip_vertical) == (True, False)
    assert dict(options.format_quality)["webp"] == 70
    assert options.filename == "Café menu.png"
    assert options.enlarge is True and options.blur == 0.5


def test_expires_from_datetime_timedelta_or_timestamp() -> None:
    moment = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert "/exp:1925089445/" in BUILDER.path("x", expires=moment)
    assert "/exp:1925089445/" in BUILDER.path("x", expires=1925089445)
    soon = int(BUILDER.path("x", expires=dt.timedelta(hours=1)).split("/exp:")[1].split("/")[0])
    now = dt.datetime.now(dt.UTC).timestamp()
    assert now + 3590 < soon < now + 3610
    with pytest.raises(ValueError, match="timezone-aware"):
        BUILDER.path("x", expires=dt.datetime(2031, 1, 2))


def test_base64_source_and_extension() -> None:
    builder = UrlBuilder(key=KEY, salt=SALT, encode_source=True)
    path = builder.path("https://shop/cup.jpg?v=1", width=10, format="png")
    assert path.endswith("/w:10/aHR0cHM6Ly9zaG9wL2N1cC5qcGc_dj0x.png")
    options = parse(path)
    assert (options.source_url, options.format) == ("https://shop/cup.jpg?v=1", "png")


def test_presets_and_info_urls(local_server: str) -> None:
    path = BUILDER.path("x", preset=("thumb", "sharp"), width=10)
    assert "/w:10/pr:thumb:sharp/plain/x" in path
    info = httpx.get(
        local_server + BUILDER.info_url("local:///cup.png", width=100, format="png"), timeout=60
    )
    assert info.status_code == 200
    report = info.json()
    assert report["result"]["width"] == 100 and report["source"]["width"] == 400


def test_unsigned_builder_and_bad_input() -> None:
    assert UrlBuilder().path("x", width=1) == "/insecure/w:1/plain/x"
    with pytest.raises(ValueError, match="unknown processing option"):
        BUILDER.path("x", wdith=1)
    with pytest.raises(ValueError, match="'/'"):
        BUILDER.path("x", cachebuster="a/b")
    with pytest.raises(ValueError, match="both key and salt"):
        UrlBuilder(key=KEY)


# Option sets that do not overlap (resize vs size vs width...), as a web app writes them.
option_values = st.fixed_dictionaries(
    {},
    optional={
        "resize": st.tuples(
            st.sampled_from(["fit", "fill", "fill-down", "force", "auto"]),
            st.integers(0, 2000),
            st.integers(0, 2000),
        ),
        "gravity": st.one_of(
            st.sampled_from(["sm", "no", "soea", "ce"]),
            st.tuples(st.just("fp"), st.floats(0, 1), st.floats(0, 1)),
        ),
        "quality": st.one_of(st.integers(1, 100), st.just("auto")),
        "format": st.sampled_from(["jpg", "png", "webp", "avif", "gif"]),
        "dpr": st.sampled_from([1, 1.5, 2, 3]),
        "blur": st.floats(0.1, 20).map(lambda v: round(v, 2)),
        "rotate": st.sampled_from([0, 90, 180, 270]),
        "background": st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
        "enlarge": st.booleans(),
        "cachebuster": st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12),
        "max_bytes": st.integers(1, 10**7),
        "strip_metadata": st.booleans(),
        "filename": st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s),
    },
)


@settings(max_examples=150, deadline=None)
@given(option_values, st.data())
def test_one_spelling_per_set_of_options(values: dict[str, Any], data: st.DataObject) -> None:
    path = BUILDER.path("https://shop.example.com/a/cup.jpg", **values)
    options = parse(path)  # the server accepts it, signature included
    # Any order of keywords, any spelling of the names: the same URL.
    shuffled = data.draw(st.permutations(list(values.items())))
    assert BUILDER.with_options(**dict(shuffled)).path("https://shop.example.com/a/cup.jpg") == path
    # Written back as URL text (the path's own segments), it reproduces itself.
    segments = split_path(path).option_segments
    assert (
        BUILDER.with_option_text(segments).path(
            "https://shop.example.com/a/cup.jpg",
            format=values.get("format"),
        )
        == path
    )
    if "resize" in values:
        assert (options.width, options.height) == values["resize"][1:]
    if "quality" in values:
        assert (
            options.auto_quality
            if values["quality"] == "auto"
            else (options.quality == values["quality"])
        )
    if "filename" in values:
        assert options.filename == values["filename"]


# --- against imgproxy's official builder ------------------------------------------


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("local")
    (root / "cup.png").write_bytes(encode(with_alpha(quadrants(400, 300), 255), "png"))
    (root / "photo.jpg").write_bytes(encode(gradient(1600, 1000), "jpg"))
    (root / "squarer.jpg").write_bytes(encode(gradient(1280, 1024), "jpg"))
    watermark = encode(quadrants(60, 40), "png")
    settings_ = make_settings(local_filesystem_root=str(root), watermark_data=watermark)
    with serve_pixelpipe(settings_) as base:
        yield base


def test_matches_imgproxy_node_on_every_reference_case(local_server: str) -> None:
    cases = json.loads((REFERENCE / "cases.json").read_text())
    reference = json.loads((REFERENCE / "reference_urls.json").read_text())
    assert reference["source"] == "local:///cup.png"
    assert len(cases) >= 30
    with httpx.Client(timeout=60) as client:
        for case in cases:
            builder = UrlBuilder(key=KEY, salt=SALT, encode_source=case.get("base64", False))
            ours = client.get(local_server + builder.path("local:///cup.png", **case["ours"]))
            theirs = client.get(local_server + reference["urls"][case["name"]])
            assert ours.status_code == theirs.status_code == 200, (case["name"], theirs.text)
            # Same options understood the same way: the same ETag and the same bytes.
            assert ours.headers["etag"] == theirs.headers["etag"], case["name"]
            assert ours.content == theirs.content, case["name"]
            decode(ours.content)  # a real image
    first = decode(client_get(local_server, BUILDER.path("local:///cup.png", **cases[0]["ours"])))
    assert (first.width, first.height) == (300, 200)


def client_get(base: str, path: str) -> bytes:
    response = httpx.get(base + path, timeout=60)
    assert response.status_code == 200
    return response.content


# --- srcset and <picture> ----------------------------------------------------------


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def elements(markup: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(markup)
    return parser.found


def candidates(srcset_value: str) -> list[tuple[str, str]]:
    return [tuple(item.strip().rsplit(" ", 1)) for item in srcset_value.split(",")]  # type: ignore[misc]


def test_srcset_candidates_are_served_at_their_widths(local_server: str) -> None:
    value = srcset(BUILDER, "local:///photo.jpg", [640, 160, 320], width=640, height=400)
    listed = candidates(value)
    assert [descriptor for _, descriptor in listed] == ["160w", "320w", "640w"]
    for url, descriptor in listed:
        image = decode(client_get(local_server, url))
        width = int(descriptor[:-1])
        assert (image.width, image.height) == (width, width * 400 // 640)


def test_density_srcset(local_server: str) -> None:
    listed = candidates(srcset_density(BUILDER, "local:///photo.jpg", (1, 2), width=200))
    assert [descriptor for _, descriptor in listed] == ["1x", "2x"]
    one, two = (decode(client_get(local_server, url)) for url, _ in listed)
    assert (one.width, two.width) == (200, 400)


def test_picture_markup_is_escaped_and_complete(local_server: str) -> None:
    markup = picture(
        BUILDER,
        "local:///photo.jpg",
        [320, 640],
        width=640,
        height=400,
        alt='A "cup" & <saucer>',
        sizes="(max-width: 700px) 100vw, 640px",
    )
    found = elements(markup)
    assert [tag for tag, _ in found] == ["picture", "source", "source", "img"]
    (_, avif), (_, webp), (_, img) = found[1:]
    assert (avif["type"], webp["type"]) == ("image/avif", "image/webp")
    assert img["alt"] == 'A "cup" & <saucer>'  # escaped in the markup, intact when parsed
    assert "&quot;cup&quot; &amp; &lt;saucer&gt;" in markup
    assert (img["width"], img["height"], img["loading"]) == ("640", "400", "lazy")
    assert img["sizes"] == avif["sizes"] == "(max-width: 700px) 100vw, 640px"
    for source, content_type in ((avif, "image/avif"), (webp, "image/webp")):
        for url, _ in candidates(source["srcset"] or ""):
            answer = httpx.get(local_server + url, timeout=60)
            assert answer.headers["content-type"] == content_type
    fallback = httpx.get(local_server + (img["src"] or ""), timeout=60)
    assert fallback.headers["content-type"] == "image/jpeg"
    assert decode(fallback.content).width == 640


def test_every_candidate_has_the_ratio_the_markup_promises(local_server: str) -> None:
    # A 5:4 source in 16:10 markup, with a candidate wider than the source:
    # the default resize (fit) would answer 500x400 for 640w and break the layout.
    markup = picture(
        BUILDER, "local:///squarer.jpg", [250, 640, 1000, 1600], width=640, height=400, alt=""
    )
    found = elements(markup)
    (_, img) = found[-1]
    assert (img["width"], img["height"]) == ("640", "400")
    urls = [img["src"] or ""] + [
        url for _, attributes in found[1:] for url, _ in candidates(attributes["srcset"] or "")
    ]
    assert len(urls) == 1 + 3 * 4
    for url in urls:
        image = decode(client_get(local_server, url))
        assert abs(image.width / image.height - 640 / 400) < 0.01, (url, image.width, image.height)
        assert image.width == min(int(url.split("/w:")[1].split("/")[0]), 1280)


def test_a_chosen_resizing_type_is_kept() -> None:
    fit = srcset(BUILDER, "local:///x.jpg", [100], width=200, height=100, resizing_type="fit")
    assert "/rt:fit/" in fit and "fill-down" not in fit
    chosen = BUILDER.with_options(resize=("force", 10, 10))
    assert "fill-down" not in srcset(chosen, "local:///x.jpg", [100], width=200, height=100)
    assert "fill-down" not in srcset(BUILDER, "local:///x.jpg", [100])  # no height: no ratio


def test_picture_rejects_unknown_formats() -> None:
    with pytest.raises(ValueError, match="MIME"):
        picture(BUILDER, "x", [100], width=1, height=1, alt="", formats=("bmpx",))


# --- templates and the command line ----------------------------------------------


def test_jinja_filter_and_globals() -> None:
    environment = jinja2.Environment(autoescape=True)
    install(environment, UrlBuilder("https://img.example.com", key=KEY, salt=SALT))
    page = environment.from_string(
        '<img src="{{ "https://shop/cup.jpg" | pixelpipe_url(width=300) }}">'
        '{{ pixelpipe_picture("https://shop/cup.jpg", widths=[320], width=320, height=200, '
        'alt="a <b>") }}'
        '<img srcset="{{ pixelpipe_srcset("https://shop/cup.jpg", [100, 200]) }}">'
    ).render()
    found = elements(page)
    assert found[0][1]["src"] == UrlBuilder("https://img.example.com", key=KEY, salt=SALT).url(
        "https://shop/cup.jpg", width=300
    )
    assert [tag for tag, _ in found] == ["img", "picture", "source", "source", "img", "img"]
    assert found[4][1]["alt"] == "a <b>" and "a &lt;b&gt;" in page  # escaped once, not twice


def test_pixelpipe_url_command(local_server: str) -> None:
    pixelpipe = shutil.which("pixelpipe", path=os.path.dirname(sys.executable)) or "pixelpipe"
    result = subprocess.run(
        [pixelpipe, "url", "local:///cup.png", "resize:fill:120:80", "q:70", "f:webp",
         "--key", KEY, "--salt", SALT],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    path = result.stdout.strip()
    assert path == BUILDER.path(
        "local:///cup.png", resize=("fill", 120, 80), quality=70, format="webp"
    )
    image = decode(client_get(local_server, path))
    assert (image.width, image.height) == (120, 80)
    bad = subprocess.run([pixelpipe, "url", "x", "nope:1"], capture_output=True, text=True)
    assert (
        bad.returncode == 2
        and bad.stderr.strip() == "pixelpipe url: unknown processing option: nope"
    )
