"""OpenTelemetry traces: one trace per upload, across every service.

The W3C trace context (`traceparent`, `tracestate`) travels in gRPC metadata
(interceptors.py: TelemetryInterceptor on servers, TraceContextClientInterceptor
on peer channels), in AMQP message headers (the bus injects it on publish and
makes the handler's span a child of it), and through metadata's outbox (each
row keeps the traceparent of the transaction that wrote it, so the relay's
later publish joins that trace). Every JSON log line written inside a span
carries its trace_id and span_id (logs.py).

Spans are always made, so log lines always have ids; they leave the process
only when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
is set, over OTLP with the protocol OTEL_EXPORTER_OTLP_PROTOCOL names
(http/protobuf by default, or grpc). The other standard OTEL_* variables
(service name, resource attributes, headers, sampler) apply as the SDK reads them.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping, MutableMapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

__all__ = ["Span", "SpanKind", "Status", "StatusCode", "attach_span", "configure_tracing", "current_ids",
           "current_traceparent", "detach_span", "inject", "remote_context", "shutdown_tracing", "span", "tracer"]

log = logging.getLogger("vtc.tracing")

TRACER_NAME = "vtc"
_configured: TracerProvider | None = None
_tracer: trace.Tracer | None = None


def configure_tracing(service_name: str) -> TracerProvider:
    """Installs the process's tracer provider, once (later calls return the first):
    named `service_name` unless OTEL_SERVICE_NAME says otherwise, exporting over
    OTLP when an endpoint is configured."""
    global _configured
    if _configured is not None:
        return _configured
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    exporter = _otlp_exporter()
    if exporter is not None:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _configured = provider
    return provider


def shutdown_tracing() -> None:
    """Sends the spans still buffered (call on the way out)."""
    if _configured is not None:
        _configured.shutdown()


def _otlp_exporter():  # type: ignore[no-untyped-def]
    if not (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")):
        return None
    protocol = (os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    elif protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
    else:
        raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use grpc or http/protobuf")
    log.info("exporting traces over OTLP (%s)", protocol)
    return OTLPSpanExporter()


def tracer() -> trace.Tracer:
    global _tracer
    if _tracer is None:
        # A library user (a test) that never configured gets spans too: ids still go into the logs.
        _tracer = configure_tracing("vtc").get_tracer(TRACER_NAME)
    return _tracer


_NO_CARRIER = object()


def span(name: str, *, kind: SpanKind = SpanKind.INTERNAL,
         attributes: Mapping[str, str | int | float | bool] | None = None,
         carrier: Mapping[str, str] | None | object = _NO_CARRIER) -> contextlib.AbstractContextManager[Span]:
    """A span, current inside the `with`; an exception escaping it is recorded and
    marks it as an error. A child of the current span, or with `carrier` (message
    headers, call metadata) a child of the trace context found there, the root of
    a new trace if there is none."""
    parent = None if carrier is _NO_CARRIER else remote_context(carrier)  # type: ignore[arg-type]
    return tracer().start_as_current_span(name, context=parent, kind=kind, attributes=dict(attributes or {}))


def remote_context(carrier: Mapping[str, str] | None) -> otel_context.Context:
    """The trace context a peer sent in carrier, or an empty one (a new trace starts
    there, not under whatever happened to be current)."""
    return propagate.extract(carrier or {}, context=otel_context.Context())


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) in hex of the current span, if any."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def inject(carrier: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Writes the current trace context (traceparent, tracestate) into carrier."""
    propagate.inject(carrier)
    return carrier


def current_traceparent() -> str | None:
    """The current span's W3C traceparent, to be stored (metadata's outbox rows)."""
    return inject({}).get("traceparent")


def attach_span(span: Span) -> object:
    """Makes span current (for code that cannot hold a `with` open); detach_span undoes it."""
    return otel_context.attach(trace.set_span_in_context(span))


def detach_span(token: object) -> None:
    """Undoes attach_span. An async generator closed from another task (a
    streaming call the client abandoned) runs this in a context the token does not
    belong to: nothing is left to undo there, so that is no error."""
    with contextlib.suppress(ValueError, RuntimeError):
        otel_context._RUNTIME_CONTEXT.detach(token)  # type: ignore[arg-type]  # public detach logs this case
