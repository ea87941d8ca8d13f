"""OpenTelemetry traces sent to an OTLP/HTTP receiver on loopback.

The receiver is an HTTP server that takes what the exporter POSTs to
`/v1/traces` and decodes it with OpenTelemetry's own protobuf definitions
(opentelemetry-proto), as a collector does. pixelpipe runs as users run it:
`pixelpipe serve` with OPEN_TELEMETRY_ENABLE and the standard OTEL_*
variables; its JSON access log is read from its output.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.conftest import signed
from tests.images import encode, photo_like
from tests.ports import free_port
from tests.servers import Origin, wait_until_serving
from tests.test_cli import PIXELPIPE, serve_env


class Receiver:
    """Spans received, decoded: name, ids, parent, attributes, events, service."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                receiver.take(request, self.headers.get("x-test-header", ""))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self, request: ExportTraceServiceRequest, header: str) -> None:
        with self.lock:
            for resource_spans in request.resource_spans:
                service = {
                    a.key: a.value.string_value for a in resource_spans.resource.attributes
                }.get("service.name")
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self.spans.append(
                            {
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent": span.parent_span_id.hex(),
                                "events": [e.name for e in span.events],
                                "service": service,
                                "header": header,
                            }
                        )

    def trace(self, trace_id: str, wanted: set[str], timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                found = [s for s in self.spans if s["trace_id"] == trace_id]
            if wanted <= {s["name"] for s in found} or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


@contextmanager
def grpc_receiver(receiver: Receiver) -> Iterator[str]:
    """The same receiver behind OTLP's gRPC service (grpcio, which the gRPC
    exporter brings): its endpoint."""
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    class Service(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(
            self, request: ExportTraceServiceRequest, context: Any
        ) -> ExportTraceServiceResponse:
            metadata = dict(context.invocation_metadata())
            receiver.take(request, metadata.get("x-test-header", ""))
            return ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop(None)


@contextmanager
def traced_server(receiver: Receiver, log: Path, **variables: str) -> Iterator[str]:
    port = free_port()
    env = serve_env(
        PIXELPIPE_LOG_FORMAT="json",
        OTEL_EXPORTER_OTLP_ENDPOINT=variables.pop("endpoint", receiver.endpoint),
        OTEL_EXPORTER_OTLP_HEADERS="x-test-header=from-otel-headers",
        OTEL_SERVICE_NAME="pixelpipe-under-test",
        OTEL_BSP_SCHEDULE_DELAY="100",
        **variables,
    )
    with log.open("wb") as output:
        process = subprocess.Popen(
            [PIXELPIPE, "serve", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_serving(base, process, "/ready", timeout=60)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()


@pytest.fixture(scope="module")
def photo(origin: Origin) -> str:
    return origin.add("/traced/photo.jpg", encode(photo_like(400, 300), "jpg", Q=90))


def get_traced(base: str, path: str, trace_id: str, sampled: bool = True, parent: str = "") -> None:
    """GET a signed path as a caller inside trace `trace_id`; it must succeed."""
    flags = "01" if sampled else "00"
    traceparent = f"00-{trace_id}-{parent or secrets.token_hex(8)}-{flags}"
    answer = httpx.get(base + signed(path), headers={"traceparent": traceparent}, timeout=60)
    assert answer.status_code == 200, answer.text


STAGES = {
    "image request",
    "parse",
    "cache.memory",
    "fetch",
    "admission",
    "process",
    "decode",
    "processing",
}


def test_a_miss_is_one_trace_continuing_traceparent(
    receiver: Receiver, photo: str, tmp_path: Path
) -> None:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    log = tmp_path / "server.log"
    with traced_server(
        receiver, log, PIXELPIPE_OPEN_TELEMETRY_ENABLE="true", OTEL_TRACES_SAMPLER="always_on"
    ) as base:
        get_traced(base, f"/rs:fit:200:200/q:auto/plain/{photo}@webp", trace_id, parent=parent)
        spans = receiver.trace(trace_id, STAGES | {"encode"})
    names = {span["name"] for span in spans}
    assert STAGES | {"encode"} <= names, names
    by_name = {span["name"]: span for span in spans}
    root = by_name["image request"]
    assert root["parent"] == parent  # the caller's span is the parent
    ids = {span["span_id"] for span in spans}
    assert all(span["parent"] in ids for span in spans if span is not root)
    assert by_name["encode"]["events"].count("quality:auto probe") >= 2
    assert {span["service"] for span in spans} == {"pixelpipe-under-test"}
    assert {span["header"] for span in spans} == {"from-otel-headers"}
    lines = [json.loads(line) for line in log.read_text().splitlines() if '"request"' in line]
    (line,) = [entry for entry in lines if entry.get("path", "").startswith("/")]
    assert line["trace_id"] == trace_id


def test_off_by_default_and_sampled_out_sends_nothing(
    receiver: Receiver, photo: str, tmp_path: Path
) -> None:
    for variables in ({}, {"PIXELPIPE_OPEN_TELEMETRY_ENABLE": "true",
                           "OTEL_TRACES_SAMPLER": "traceidratio",
                           "OTEL_TRACES_SAMPLER_ARG": "0"}):  # fmt: skip
        trace_id = secrets.token_hex(16)
        log = tmp_path / "quiet.log"
        with traced_server(receiver, log, **variables) as base:
            get_traced(base, f"/rs:fit:100:100/plain/{photo}@png", trace_id, sampled=False)
        assert receiver.trace(trace_id, {"image request"}, timeout=1) == []
        assert '"trace_id"' not in log.read_text()


def test_grpc_protocol(receiver: Receiver, photo: str, tmp_path: Path) -> None:
    """OTEL_EXPORTER_OTLP_PROTOCOL=grpc: the same spans over OTLP's gRPC service."""
    trace_id = secrets.token_hex(16)
    with (
        grpc_receiver(receiver) as endpoint,
        traced_server(
            receiver,
            tmp_path / "grpc.log",
            endpoint=endpoint,
            PIXELPIPE_OPEN_TELEMETRY_ENABLE="true",
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_TRACES_SAMPLER="always_on",
        ) as base,
    ):
        get_traced(base, f"/rs:fit:120:120/plain/{photo}@jpg", trace_id)
        spans = receiver.trace(trace_id, STAGES)
    assert {span["name"] for span in spans} >= STAGES
    assert {span["header"] for span in spans} == {"from-otel-headers"}


def test_the_result_store_tiers_are_spans(receiver: Receiver, photo: str, tmp_path: Path) -> None:
    """With a result store (moto's S3 server on loopback): a miss looks in the
    store and then writes to it, the write carried into the store's writer as
    a span of the request's trace."""
    from tests.emulators import moto_s3

    trace_id = secrets.token_hex(16)
    with moto_s3() as s3:
        s3.create_bucket("traces")
        with traced_server(
            receiver,
            tmp_path / "store.log",
            PIXELPIPE_OPEN_TELEMETRY_ENABLE="true",
            OTEL_TRACES_SAMPLER="always_on",
            PIXELPIPE_USE_S3="true",
            PIXELPIPE_S3_ENDPOINT=s3.endpoint,
            PIXELPIPE_S3_REGION="us-east-1",
            PIXELPIPE_RESULT_STORAGE="s3://traces/results",
            **s3.env(),
        ) as base:
            get_traced(base, f"/rs:fit:110:110/plain/{photo}@jpg", trace_id)
            spans = receiver.trace(trace_id, {"cache.result_store", "result_store.write"})
    assert {"cache.result_store", "result_store.write"} <= {span["name"] for span in spans}
