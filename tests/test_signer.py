from __future__ import annotations

import subprocess
import sys

import pytest

from signing import KeyRing, Signer, sign_path

DOCS_PATH = "/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png"


def test_matches_the_imgproxy_documentation_example() -> None:
    # imgproxy's "Signing the URL" guide: key "secret", salt "hello" (hex-encoded).
    signer = Signer("736563726574", "68656C6C6F")
    assert signer.sign(DOCS_PATH) == "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8"


def test_sign_path_prefixes_the_signature() -> None:
    assert sign_path(DOCS_PATH, "736563726574", "68656C6C6F") == (
        "/oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8" + DOCS_PATH
    )


def test_raw_bytes_and_hex_strings_are_the_same_key() -> None:
    assert Signer(b"secret", b"hello").sign("/x") == Signer("736563726574", "68656c6c6f").sign("/x")


def test_signature_size_truncates_the_digest() -> None:
    full = Signer(b"k", b"s").sign("/p")
    short = Signer(b"k", b"s", size=8).sign("/p")
    assert len(full) == 43 and len(short) == 11
    assert full.startswith(short[:10])


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "x",
        "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH9",
        "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8=",
    ],
)
def test_verify_rejects_anything_but_the_exact_signature(signature: str) -> None:
    assert not Signer(b"secret", b"hello").verify(signature, DOCS_PATH)


def test_verify_accepts_the_exact_signature() -> None:
    assert Signer(b"secret", b"hello").verify(
        "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8", DOCS_PATH
    )


def test_verify_survives_non_ascii_input() -> None:
    assert not Signer(b"k", b"s").verify("é\udcff", "/p")


def test_key_ring_accepts_any_pair_and_signs_with_the_first() -> None:
    ring = KeyRing.from_pairs([b"new", b"old"], [b"s1", b"s2"])
    assert ring.verify(Signer(b"old", b"s2").sign("/p"), "/p")
    assert ring.verify(Signer(b"new", b"s1").sign("/p"), "/p")
    assert not ring.verify(Signer(b"new", b"s2").sign("/p"), "/p")
    assert ring.sign("/p") == Signer(b"new", b"s1").sign("/p")


def test_empty_key_ring_is_false() -> None:
    assert not KeyRing([])


def test_bad_signature_size_is_refused() -> None:
    with pytest.raises(ValueError):
        Signer(b"k", b"s", size=33)


def test_signing_imports_without_the_server_dependencies() -> None:
    code = (
        "import sys, signing; "
        "heavy = {'pyvips', 'starlette', 'httpx', 'uvicorn', 'proxy'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
