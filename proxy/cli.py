"""`pixelpipe serve`, `sign`, `url`, `cdn-config` and `source-key`."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from proxy.allocator import exec_with_allocator
from proxy.settings import Settings, SettingsError
from proxy.storage import ObjectStores


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pixelpipe", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the image proxy server")
    serve.add_argument("--host", help="listen address (default: PIXELPIPE_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default: PIXELPIPE_PORT or 8080)")
    serve.add_argument(
        "--workers", type=int, help="server processes (default: PIXELPIPE_WORKERS or CPU count)"
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="development mode: the playground at / over the bundled sample images "
        "(local:///), with a signing key made up for this run unless PIXELPIPE_KEY is set",
    )

    sign = commands.add_parser(
        "sign",
        help="print the signed form of a processing path",
        description="The key and salt come from --key/--salt or, as for the server, "
        "PIXELPIPE_KEY/PIXELPIPE_SALT (IMGPROXY_KEY/IMGPROXY_SALT).",
    )
    sign.add_argument("--key", help="hex-encoded key (default: PIXELPIPE_KEY)")
    sign.add_argument("--salt", help="hex-encoded salt (default: PIXELPIPE_SALT)")
    sign.add_argument("--size", type=int, default=32, help="signature bytes (default 32)")
    sign.add_argument("path", help="e.g. /rs:fill:300:200/plain/https://example.com/cup.jpg")

    url = commands.add_parser(
        "url",
        help="build and sign an image URL from options",
        description="Options are written as in URLs, e.g. rs:fill:300:200 quality:80 f:webp. "
        "The key and salt come from --key/--salt or PIXELPIPE_KEY/PIXELPIPE_SALT.",
    )
    url.add_argument("source", help="source image URL, e.g. https://example.com/cup.jpg")
    url.add_argument("options", nargs="*", help="processing options: name:arg:arg ...")
    url.add_argument("--key", help="hex-encoded key (default: PIXELPIPE_KEY)")
    url.add_argument("--salt", help="hex-encoded salt (default: PIXELPIPE_SALT)")
    url.add_argument("--base", default="", help="server address, e.g. https://img.example.com")
    url.add_argument("--base64", action="store_true", help="base64-encode the source URL")
    url.add_argument("--size", type=int, default=32, help="signature bytes (default 32)")

    cdn = commands.add_parser(
        "cdn-config",
        help="print the CDN configuration for these settings (varnish, fastly, cloudfront, "
        "cloudflare)",
        description="Generated from the server's own negotiation rules and the settings in "
        "the environment (AUTO_*, ENFORCE_*, ENABLE_CLIENT_HINTS), so edge and origin agree.",
    )
    cdn.add_argument("target", choices=("varnish", "fastly", "cloudfront", "cloudflare"))
    cdn.add_argument("--backend", default="127.0.0.1:8080", help="Varnish: pixelpipe's host:port")

    key = commands.add_parser(
        "source-key",
        help="print the Surrogate-Key of a source URL (purge all its variants at the CDN)",
    )
    key.add_argument("source", help="the source URL as the image URLs name it")

    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    if args.command == "sign":
        return run_sign(args)
    if args.command == "url":
        return run_url(args)
    if args.command == "cdn-config":
        return run_cdn_config(args)
    if args.command == "source-key":
        from proxy.cdn import source_key

        print(source_key(args.source))
        return 0
    return run_serve(args, arguments)


def run_cdn_config(args: argparse.Namespace) -> int:
    from proxy.cdn import generate
    from proxy.negotiate import NegotiationPolicy

    host, _, port = args.backend.rpartition(":")
    if not host or not port.isdigit():
        print("pixelpipe cdn-config: --backend is host:port", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"pixelpipe cdn-config: {exc}", file=sys.stderr)
        return 2
    print(generate(args.target, NegotiationPolicy.from_settings(settings), host, int(port)), end="")
    return 0


def signing_pair(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """--key/--salt, else the server's variables (the first pair of a rotation list)."""

    def first(name: str) -> str | None:
        value = os.environ.get(f"PIXELPIPE_{name}") or os.environ.get(f"IMGPROXY_{name}") or ""
        return value.split(",")[0].strip() or None

    return args.key or first("KEY"), args.salt or first("SALT")


def run_url(args: argparse.Namespace) -> int:
    from signing import UrlBuilder

    key, salt = signing_pair(args)
    try:
        builder = UrlBuilder(
            args.base, key=key, salt=salt, signature_size=args.size, encode_source=args.base64
        ).with_option_text(args.options)
        print(builder.url(args.source))
    except ValueError as exc:
        print(f"pixelpipe url: {exc}", file=sys.stderr)
        return 2
    return 0


def run_sign(args: argparse.Namespace) -> int:
    from signing import sign_path

    key, salt = signing_pair(args)
    if key is None or salt is None:
        print("pixelpipe sign: give --key and --salt, or set PIXELPIPE_KEY/SALT", file=sys.stderr)
        return 2
    try:
        print(sign_path(args.path, key, salt, args.size))
    except ValueError as exc:
        print(f"pixelpipe sign: {exc}", file=sys.stderr)
        return 2
    return 0


def development_environment(env: Mapping[str, str]) -> dict[str, str]:
    """What `--dev` adds to the environment: only what is not set already.

    The key pair is random per run and stays in the server (the playground
    asks the server to sign); it goes into the environment before the
    workers start so that all of them sign and check alike.
    """

    added = {"PIXELPIPE_PLAYGROUND": "true"}
    if not (env.get("PIXELPIPE_KEY") or env.get("IMGPROXY_KEY")):
        added |= {"PIXELPIPE_KEY": secrets.token_hex(32), "PIXELPIPE_SALT": secrets.token_hex(32)}
    if not (
        env.get("PIXELPIPE_LOCAL_FILESYSTEM_ROOT") or env.get("IMGPROXY_LOCAL_FILESYSTEM_ROOT")
    ):
        samples = Path(__file__).resolve().parent / "samples"
        added["PIXELPIPE_LOCAL_FILESYSTEM_ROOT"] = str(samples)
    return added


def run_serve(args: argparse.Namespace, argv: list[str]) -> int:
    if args.dev and "PIXELPIPE_PLAYGROUND" not in os.environ:
        os.environ.update(development_environment(os.environ))
    try:
        settings = Settings.from_env()
        ObjectStores(settings).check()
    except SettingsError as exc:
        print(f"pixelpipe: {exc}", file=sys.stderr)
        return 2
    workers = args.workers or settings.workers
    if workers < 1:
        print("pixelpipe: --workers must be at least 1", file=sys.stderr)
        return 2
    # Before anything else is allocated: the malloc every worker inherits.
    exec_with_allocator(settings.allocator, argv)
    host = args.host or settings.host
    if args.dev:
        print(
            f"pixelpipe: development mode: open http://{host}:{args.port or settings.port}/ "
            "for the playground over the sample images",
            file=sys.stderr,
        )
    with ending_by_sigterm(), MetricsDirectory():
        # Imported only now: prometheus-client reads PROMETHEUS_MULTIPROC_DIR on import.
        import uvicorn

        from proxy.workers import serve_workers

        if settings.metrics_port:
            start_metrics_server(host, settings.metrics_port)
        config = uvicorn.Config(
            "proxy.app:create_app_from_env",
            factory=True,
            host=host,
            port=args.port or settings.port,
            workers=workers,
            **server_options(settings),  # type: ignore[arg-type]
        )
        with contextlib.suppress(KeyboardInterrupt):
            serve_workers(config, workers, settings.reuse_port)
    return 0


class Terminated(Exception):
    """SIGTERM, raised where the main thread is."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def ending_by_sigterm() -> Iterator[None]:
    """Lets SIGTERM unwind the blocks inside (the metrics directory is removed),
    then ends the process by SIGTERM as it would have ended (status -15).

    uvicorn takes SIGTERM over while it serves, shuts down gracefully, then puts
    back the handler it found and raises the signal again: with the default
    handler the process ended there, before any `finally` or `with` exit ran,
    and every single-worker server (and one stopped while starting) left its
    directory in the temporary folder."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    except Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)


class MetricsDirectory:
    """A fresh PROMETHEUS_MULTIPROC_DIR for this server's workers, removed at exit.

    Every worker process writes its metric values there and every scrape adds
    them up; stale files from an earlier run would be added in too, so an
    operator-given directory is emptied first.
    """

    def __enter__(self) -> str:
        given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if given:
            os.makedirs(given, exist_ok=True)
            for name in os.listdir(given):
                if name.endswith(".db"):
                    os.remove(os.path.join(given, name))
            self.created: str | None = None
            return given
        self.created = tempfile.mkdtemp(prefix="pixelpipe-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = self.created
        return self.created

    def __exit__(self, *exc: object) -> None:
        if self.created:
            shutil.rmtree(self.created, ignore_errors=True)


def start_metrics_server(host: str, port: int) -> None:
    """/metrics on its own port, served by the supervising process for all workers."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(port, addr=host, registry=registry)


def server_options(settings: Settings) -> dict[str, object]:
    """uvicorn settings that are part of our limits, shared with the tests' server."""
    from proxy.logs import logging_config

    return {
        "log_level": settings.log_level,
        "log_config": logging_config(settings),
        # pixelpipe writes its own access line (with request id, cache tier, durations).
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,
        # httptools' C parser on uvloop; the request head is bounded as h11 bounds
        # it (431 beyond max_header_bytes; see proxy.server_protocol).
        "http": "proxy.server_protocol:BoundedHttpToolsProtocol",
        "loop": "uvloop",
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        # SIGTERM: stop accepting, give in-flight requests this long to finish.
        "timeout_graceful_shutdown": settings.shutdown_timeout,
    }
