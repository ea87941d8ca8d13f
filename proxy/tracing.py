"""OpenTelemetry traces: one per image request, its stages as child spans.

Off (the default) every `span()` is a shared no-op context manager and
nothing of OpenTelemetry is imported. On (`OPEN_TELEMETRY_ENABLE`, imgproxy's
name) the SDK is configured by the standard variables, which it reads
itself: `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`),
`OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`, the default, or `grpc`),
`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME` (default `pixelpipe`) and
`OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG` (for example
`parentbased_traceidratio` and `0.1`). An incoming W3C `traceparent`
continues its trace. Each worker process sets up its own exporter (spans are
batched and sent from a thread of that process).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

# The standard variables the SDK (and `configure`) reads; the docs name them.
OTEL_VARIABLES = frozenset(
    {
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_SERVICE_NAME",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
    }
)
_NOTHING: AbstractContextManager[None] = contextlib.nullcontext()
_tracer: Any = None  # an opentelemetry Tracer once configured, else None
_provider: Any = None


def enabled() -> bool:
    return _tracer is not None


def configure(on: bool) -> None:
    """Set up (or leave off) tracing for this process; idempotent."""
    global _tracer, _provider
    if not on or _tracer is not None:
        return
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or "pixelpipe"
    _provider = TracerProvider(resource=Resource.create({"service.name": name}))
    _provider.add_span_processor(BatchSpanProcessor(_exporter()))
    _tracer = _provider.get_tracer("pixelpipe")
    trace.set_tracer_provider(_provider)


def _exporter() -> Any:
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol != "http/protobuf":
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL {protocol!r}: http/protobuf or grpc")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter()


def shutdown() -> None:
    """Send what is batched (at the worker's exit)."""
    if _provider is not None:
        _provider.shutdown()


def span(name: str, **attributes: object) -> AbstractContextManager[Any]:
    """A child span of the current one (a no-op when tracing is off)."""
    if _tracer is None:
        return _NOTHING
    return _tracer.start_as_current_span(name, attributes=attributes or None)


@contextlib.contextmanager
def request_span(name: str, headers: Mapping[str, str]) -> Iterator[Any]:
    """The server span of one request, continuing an incoming `traceparent`."""
    if _tracer is None:
        yield None
        return
    from opentelemetry.propagate import extract
    from opentelemetry.trace import SpanKind

    with _tracer.start_as_current_span(
        name, context=extract(dict(headers)), kind=SpanKind.SERVER
    ) as current:
        yield current


def event(name: str, **attributes: object) -> None:
    """An event on the current span (quality:auto's probes)."""
    if _tracer is None:
        return
    from opentelemetry import trace

    trace.get_current_span().add_event(name, attributes=attributes or None)  # type: ignore[arg-type]


def trace_id() -> str | None:
    """The current trace's id (hex) when it is sampled, for the access line."""
    if _tracer is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid and context.trace_flags.sampled else None


def carry() -> Any:
    """The current context, to run a thread's work inside it (see `inside`)."""
    if _tracer is None:
        return None
    from opentelemetry import context

    return context.get_current()


@contextlib.contextmanager
def inside(carried: Any) -> Iterator[None]:
    if carried is None:
        yield
        return
    from opentelemetry import context

    token = context.attach(carried)
    try:
        yield
    finally:
        context.detach(token)
