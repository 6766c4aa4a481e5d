"""OpenTelemetry tracing: configured from the standard OTEL_* variables, a
no-op when no exporter is configured.

What is traced (and why not more): the ASGI layer gives one HTTP server span per
request (no per-message send/receive spans), `OperationObserver` (see
graphql.py) one span per GraphQL operation, and the psycopg instrumentation one
span per SQL statement. Transaction retries are events on the operation span.
No span per resolved field: it multiplies the cost of a request by its size.
"""
from __future__ import annotations

import contextlib

import logging
from typing import Any, Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace

log = logging.getLogger(__name__)

TRACER_NAME = "inventory"
# Probes and scrapes: not traced (a load balancer polls them every few seconds),
# and their SQL is not traced either.
UNTRACED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

_state: dict[str, Any] = {"enabled": False, "provider": None, "psycopg": None, "owned": False,
                          "tracer": None}


def exporter_from(otel: Mapping[str, str]):
    """The span exporter the OTEL_* variables (`otel`, read at startup by
    inventory/config.py) ask for, or None (tracing off).

    Tracing is on when OTEL_TRACES_EXPORTER names an exporter (otlp, console) or,
    with it unset, when an OTLP endpoint is set. OTEL_SDK_DISABLED=true or
    OTEL_TRACES_EXPORTER=none turn it off whatever else is set.
    """
    def _env(name: str) -> str:
        return (otel.get(name) or "").strip()

    if _env("OTEL_SDK_DISABLED").lower() == "true":
        return None
    names = [n.strip() for n in _env("OTEL_TRACES_EXPORTER").lower().split(",") if n.strip()]
    if not names:
        if not (_env("OTEL_EXPORTER_OTLP_ENDPOINT") or _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
            return None
        names = ["otlp"]
    if names == ["none"]:
        return None
    name = names[0]
    if len(names) > 1:
        log.warning("OTEL_TRACES_EXPORTER lists %s; using only %r", names, name)
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise SystemExit(f"OTEL_TRACES_EXPORTER={name!r} is not supported; use otlp, console or none")
    protocol = (_env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _env("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf")
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise SystemExit(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the gRPC exporter: "
                "pip install opentelemetry-exporter-otlp-proto-grpc (or use http/protobuf)"
            ) from None
        return OTLPSpanExporter()
    if protocol != "http/protobuf":
        raise SystemExit(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported; "
                         "use http/protobuf or grpc")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # Reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT/HEADERS/TIMEOUT/COMPRESSION itself;
    # a base endpoint gets /v1/traces appended.
    return OTLPSpanExporter()


def configure(provider=None, otel: Mapping[str, str] | None = None) -> bool:
    """Sets up tracing for this process; returns whether it is on.

    `provider` (tests) is used for this app only, leaving the global one alone.
    Otherwise an SDK tracer provider already installed globally (by
    `opentelemetry-instrument`) is used as it is, or one is built from the
    OTEL_* variables (resource from OTEL_SERVICE_NAME/OTEL_RESOURCE_ATTRIBUTES,
    sampler from OTEL_TRACES_SAMPLER, batching from OTEL_BSP_*).
    """
    from opentelemetry.sdk.trace import TracerProvider

    if _state["enabled"]:
        return True
    provider = provider or trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        otel = otel or {}
        exporter = exporter_from(otel)
        if exporter is None:
            return False
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        attributes = {"service.name": (otel.get("OTEL_SERVICE_NAME") or "").strip()
                      or "inventory"}
        provider = TracerProvider(resource=Resource.create(attributes))
        provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _state["owned"] = True
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor

    instrumentor = PsycopgInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        # Wraps psycopg.AsyncConnection.connect, which SQLAlchemy's psycopg
        # dialect looks up at each connect: every pooled connection is traced.
        instrumentor.instrument(tracer_provider=provider)
        _state["psycopg"] = instrumentor
    _state.update(enabled=True, provider=provider, tracer=provider.get_tracer(TRACER_NAME))
    return True


def shutdown() -> None:
    """Flushes spans and removes the instrumentation (end of a process or test)."""
    if _state["psycopg"] is not None:
        _state["psycopg"].uninstrument()
    if _state["owned"]:
        _state["provider"].shutdown()
    _state.update(enabled=False, provider=None, psycopg=None, owned=False, tracer=None)


def enabled() -> bool:
    return _state["enabled"]


def tracer() -> trace.Tracer:
    return _state["tracer"]


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits, or None when nothing is traced."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x")


def record_retry(attempt: int, sqlstate: str) -> None:
    """A retry listener (inventory.db.retry): an event on the operation span."""
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event("transaction.retry",
                       {"inventory.tx.attempt": attempt, "db.response.status_code": sqlstate})


@contextlib.contextmanager
def linked_span(name: str, contexts: list, **attributes):
    """A root span for work done once for several requests (a batch), linked to
    the span current in each request's context, so that each request's trace
    leads to the shared work. Does nothing when tracing is off."""
    if not enabled():
        yield
        return
    links = []
    for context in contexts:
        span_context = context.run(trace.get_current_span).get_span_context()
        if span_context.is_valid:
            links.append(trace.Link(span_context))
    with tracer().start_as_current_span(name, links=links, attributes=attributes):
        yield


def untraced() -> None:
    """Stops tracing for the rest of the current task (background loops such as
    the sweeper, whose idle polls would otherwise be a root trace every few
    seconds). The task runs in its own copy of the context, so nothing else is
    affected."""
    otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))


class TracingMiddleware:
    """ASGI middleware (outermost): an HTTP server span per request, honouring
    an incoming W3C `traceparent`, with the trace id returned in headers.
    Probes and scrapes (UNTRACED_PATHS) skip tracing, their SQL included."""

    def __init__(self, app):
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        self.app = app
        self.traced_app = OpenTelemetryMiddleware(
            _TraceIdHeader(app), exclude_spans=["receive", "send"],
            tracer_provider=_state["provider"],
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and scope.get("path") not in UNTRACED_PATHS:
            return await self.traced_app(scope, receive, send)
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        token = otel_context.attach(
            otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            return await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)


class _TraceIdHeader:
    """Returns the trace id to HTTP clients: `X-Trace-Id` and the W3C
    `traceresponse` header (trace context level 2)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        span_context = trace.get_current_span().get_span_context()
        if not span_context.is_valid:
            return await self.app(scope, receive, send)
        trace_id = format(span_context.trace_id, "032x").encode()
        response = b"00-%s-%016x-%02x" % (trace_id, span_context.span_id,
                                          int(span_context.trace_flags))

        async def send_with_header(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"x-trace-id", trace_id), (b"traceresponse", response)]
            await send(message)

        return await self.app(scope, receive, send_with_header)


def add_trace_id(body: dict) -> None:
    """Puts the trace id in a GraphQL response body: `extensions.traceId`, and
    in each error's extensions so that any error a user reports can be found."""
    trace_id = current_trace_id()
    if trace_id is None:
        return
    body["extensions"] = {**(body.get("extensions") or {}), "traceId": trace_id}
    for error in body.get("errors") or ():
        error.setdefault("extensions", {})["traceId"] = trace_id
