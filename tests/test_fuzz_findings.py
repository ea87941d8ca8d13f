"""Sources bench/fuzz_formats.py found answering 500, kept as they were found.

Each is a mutant of a small file from an independent encoder (tests/data/fuzz/,
named for what broke): libvips' error message quoting bytes that are not UTF-8
(pyvips failed while building its error), pillow-heif's EOFError mid-decode,
PyAV on metadata that is not UTF-8 and on a stream it has no decoder for,
PDFium on a page that does not load. Every one is now a 422 with one line, or
(where what is broken is only the metadata) an image.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pyvips

from tests.conftest import make_settings, signed
from tests.images import decode
from tests.servers import Origin, serve_pixelpipe

FINDINGS = sorted((Path(__file__).parent / "data" / "fuzz").iterdir())


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    settings = make_settings(
        enable_pdf=True, enable_psd=True, enable_raw=True, enable_video_thumbnails=True
    )
    with serve_pixelpipe(settings) as base:
        yield base


@pytest.mark.parametrize("finding", FINDINGS, ids=[path.name for path in FINDINGS])
def test_a_finding_is_a_clear_answer(server: str, origin: Origin, finding: Path) -> None:
    url = origin.add(f"/fuzz-findings/{finding.name}", finding.read_bytes())
    with httpx.Client(timeout=60) as client:
        for options in ("/w:100/plain/{}@png", "/rs:fill:64:64/plain/{}@jpg", "/raw:1/plain/{}"):
            answer = client.get(server + signed(options.format(url)))
            assert answer.status_code in (200, 422), (answer.status_code, answer.text)
            if answer.status_code == 422:
                assert answer.text.count("\n") == 1
            elif "raw:1" not in options:
                assert 0 < decode(answer.content).width <= 100
        assert client.get(server + "/health").status_code == 200


def test_an_undecodable_libvips_message_does_not_poison_later_errors(
    server: str, origin: Origin
) -> None:
    # pyvips empties libvips' error buffer after reading it, but not when reading
    # failed: the message stayed, and every later libvips error in the process
    # became a UnicodeDecodeError (a 500 wherever that was not caught).
    finding = Path(__file__).parent / "data" / "fuzz" / "libvips-message-not-utf8.heic"
    url = origin.add("/fuzz-findings/poison.heic", finding.read_bytes())
    assert httpx.get(server + signed(f"/w:10/plain/{url}@png"), timeout=60).status_code == 422
    with pytest.raises(pyvips.Error):  # the server runs in this process: same libvips
        pyvips.Image.new_from_buffer(b"not an image at all", "")
