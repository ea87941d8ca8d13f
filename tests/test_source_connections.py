"""How the client downloads sources: HTTPS with a certificate checked for the
source's host name, large bodies, connections reused and connections the
origin closed, bodies cut short or stalled.

The origins are real servers on 127.0.0.1; the certificates are made here by
`cryptography` (a CA and a leaf for `localhost` and `img.test`), and the client
trusts them the way a user makes it trust a private CA: `SSL_CERT_FILE`.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from proxy.app import build_client, build_sources
from proxy.errors import ProxyError, SourceTimeout, SourceUnavailable
from proxy.sources import SourceImage
from tests.conftest import make_settings, signed
from tests.images import decode, encode, gradient
from tests.ports import free_port
from tests.servers import Origin
from tests.soak import pixelpipe_process
from tests.test_cli import PIXELPIPE, serve_env


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    hosts: tuple[str, ...] = (),
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if hosts:
        names = [x509.DNSName(host) for host in hosts]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A test CA (ca.pem) and a leaf it signed for localhost and img.test."""
    directory = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("pixelpipe test CA", ca_key, "pixelpipe test CA", ca_key)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate(
        "localhost", leaf_key, "pixelpipe test CA", ca_key, ("localhost", "img.test")
    )
    files = {
        "ca": directory / "ca.pem",
        "leaf": directory / "leaf.pem",
        "key": directory / "key.pem",
    }
    files["ca"].write_bytes(_pem(ca))
    files["leaf"].write_bytes(_pem(leaf) + _pem(ca))
    files["key"].write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@pytest.fixture(scope="module")
def tls_origin(tls_files: dict[str, Path]) -> Iterator[Origin]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls_files["leaf"], tls_files["key"])
    origin = Origin(tls=context).start()
    yield origin
    origin.stop()


async def _loopback(host: str, port: int) -> list[str]:
    """The tests' resolver: every name is 127.0.0.1 (nothing else is ever dialled)."""
    return ["127.0.0.1"]


def fetch_all(
    urls: list[str], pause: float = 0.0, **settings: object
) -> list[SourceImage | ProxyError]:
    """Each URL through pixelpipe's client in turn, on one connection pool,
    `pause` seconds apart (the event loop runs meanwhile)."""
    config = make_settings(**settings)

    async def run() -> list[SourceImage | ProxyError]:
        results: list[SourceImage | ProxyError] = []
        async with build_client(config, _loopback) as client:
            sources = build_sources(config, client)
            for url in urls:
                try:
                    results.append(await sources.fetch(url))
                except ProxyError as error:
                    results.append(error)
                await asyncio.sleep(pause)
        return results

    return asyncio.run(run())


@pytest.fixture
def trusting(tls_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files["ca"]))


@pytest.mark.usefixtures("trusting")
def test_https_source_by_host_name_on_one_connection(tls_origin: Origin) -> None:
    body = os.urandom(3 << 20)
    tls_origin.add("/tls/big.bin", body, "application/octet-stream")
    url = f"https://img.test:{tls_origin.port}/tls/big.bin"
    before = len(tls_origin.connections)
    first, second = fetch_all([url, url], max_src_file_size=0)
    assert isinstance(first, SourceImage) and isinstance(second, SourceImage)
    assert first.data == body and second.data == body
    assert len(tls_origin.connections) == before + 1  # kept alive and reused
    assert tls_origin.last_headers["/tls/big.bin"]["Host"] == f"img.test:{tls_origin.port}"


@pytest.mark.usefixtures("trusting")
def test_a_certificate_for_another_name_is_refused(tls_origin: Origin) -> None:
    tls_origin.add("/tls/other.bin", b"x" * 100, "application/octet-stream")
    (answer,) = fetch_all([f"https://other.test:{tls_origin.port}/tls/other.bin"])
    assert isinstance(answer, SourceUnavailable)
    assert str(answer) == "source image could not be downloaded"


def test_an_untrusted_certificate_is_refused(
    tls_origin: Origin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    tls_origin.add("/tls/untrusted.bin", b"x" * 100, "application/octet-stream")
    (answer,) = fetch_all([f"https://img.test:{tls_origin.port}/tls/untrusted.bin"])
    assert isinstance(answer, SourceUnavailable)


def test_a_large_body_arrives_whole_with_and_without_a_length(origin: Origin) -> None:
    body = os.urandom((5 << 20) + 12345)
    url = origin.add("/connections/big.bin", body, "application/octet-stream")
    unsized = origin.add(
        "/connections/unsized.bin", body, "application/octet-stream", send_length=False
    )
    answers = fetch_all([url, unsized], max_src_file_size=0)
    assert [a.data for a in answers if isinstance(a, SourceImage)] == [body, body]


@pytest.mark.parametrize(
    "closing",
    [{"headers": {"Connection": "close"}}, {"hang_up": True}],
    ids=["announced", "unannounced"],
)
def test_a_connection_the_origin_closed_is_not_reused(
    origin: Origin, closing: dict[str, object]
) -> None:
    """Announced, httpcore drops the connection itself; unannounced, the pool
    asks the stream whether an idle connection is readable before reusing it.
    (The pause: a request sent while the origin's close is still on its way
    fails with any client, so this checks a close that has arrived.)"""
    path = f"/connections/closing-{len(closing)}-{'hang_up' in closing}.bin"
    url = origin.add(path, b"y" * 1000, "application/octet-stream", **closing)
    before = len(origin.connections)
    answers = fetch_all([url, url, url], pause=0.5)
    assert [len(a.data) for a in answers if isinstance(a, SourceImage)] == [1000] * 3
    assert len(origin.connections) == before + 3


def test_a_body_cut_short_and_a_stall_are_errors_not_images(origin: Origin) -> None:
    body = b"z" * 50_000
    cut = origin.add("/connections/cut.bin", body, "application/octet-stream", fault="truncated")
    stall = origin.add("/connections/stall.bin", body, "application/octet-stream", fault="drip")
    fine = origin.add("/connections/fine.bin", body, "application/octet-stream")
    answers = fetch_all([cut, stall, fine], download_timeout=1.0)
    assert isinstance(answers[0], SourceUnavailable)
    assert isinstance(answers[1], SourceTimeout)
    assert isinstance(answers[2], SourceImage) and answers[2].data == body


def test_pixelpipe_serve_resizes_an_https_source(
    tls_origin: Origin, tls_files: dict[str, Path]
) -> None:
    """As a user runs it: SSL_CERT_FILE names the CA, the source is an https URL.
    The certificate names localhost, not 127.0.0.1: asked by address, 502."""
    photo = gradient(640, 480)
    tls_origin.add("/tls/photo.jpg", encode(photo, "jpg"))
    port = free_port()
    env = serve_env(SSL_CERT_FILE=str(tls_files["ca"]))
    by_name = f"https://localhost:{tls_origin.port}/tls/photo.jpg"
    by_address = f"https://127.0.0.1:{tls_origin.port}/tls/photo.jpg"
    base = f"http://127.0.0.1:{port}"
    with pixelpipe_process(PIXELPIPE, env, port, workers=1), httpx.Client(timeout=30) as client:
        refused = client.get(base + signed(f"/rs:fit:160:160/plain/{by_address}"))
        answer = client.get(base + signed(f"/rs:fit:160:160/plain/{by_name}"))
    assert (refused.status_code, refused.text) == (502, "source image could not be downloaded\n")
    assert answer.status_code == 200, answer.text
    image = decode(answer.content)
    assert (image.width, image.height) == (160, 120)
    # The gradient's left edge is dark and its right edge light, as the source's.
    assert image.getpoint(2, 60)[0] < image.getpoint(157, 60)[0]
