"""Optional OpenTelemetry tracing (`pip install cqrs-accounts[otel]`), off by default.

A trace starts at the command POST, is stored as a W3C `traceparent` in the outbox row, and is
continued by the relay (a publish span) and, through the Kafka message headers, by the
projector (an apply span). It is configured by the standard variables: tracing is on when
`OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`) and `OTEL_SDK_DISABLED` is not
`true`; `OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_ENDPOINT` etc. work as everywhere else.
Without the extra, or with tracing off, every function here is a cheap no-op.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

log = logging.getLogger(__name__)

try:  # the `otel` extra
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover - exercised where the extra is not installed
    trace = None
    TraceContextTextMapPropagator = None

_propagator = TraceContextTextMapPropagator() if TraceContextTextMapPropagator else None


def configure_tracing(service_name: str) -> bool:
    """Install an SDK tracer provider when the OTEL_* variables ask for one."""
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    if trace is None or exporter in ("", "none") or \
            os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME",
                                                               service_name)})
    provider = TracerProvider(resource=resource)
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    log.info("tracing on: exporting spans via %s", exporter)
    return True


@contextlib.contextmanager
def span(name: str, parent: str | None = None, **attributes) -> Iterator[None]:
    """A span, child of `parent` (a traceparent) when given, else of the current span."""
    # Without an SDK provider, a span without a parent is the current (non-recording) span
    # again: nothing to do, and doing it cost ~1.5% of a command's CPU. With a parent it
    # makes that parent current, which the caller may read (current_traceparent).
    if trace is None or (parent is None and not enabled()):
        yield
        return
    context = _propagator.extract({"traceparent": parent}) if parent else None
    tracer = trace.get_tracer("cqrs-accounts")
    with tracer.start_as_current_span(name, context=context,
                                      attributes={k: str(v) for k, v in attributes.items()}):
        yield


def enabled() -> bool:
    """True once an SDK tracer provider is installed (by configure_tracing or a test)."""
    return trace is not None and not isinstance(trace.get_tracer_provider(),
                                                (trace.ProxyTracerProvider,
                                                 trace.NoOpTracerProvider))


def child_traceparent(name: str, parent: str | None, **attributes) -> str | None:
    """Record a zero-length span (child of `parent`) and return its traceparent, so the next
    hop continues from it: used where a message is handed on (the relay's publish)."""
    if not enabled():
        return parent
    with span(name, parent, **attributes):
        return current_traceparent()


def record_span(name: str, parent: str | None, start_ns: int, end_ns: int,
                **attributes) -> None:
    """A span for work already done (a projector batch), child of `parent`."""
    if not enabled():
        return
    context = _propagator.extract({"traceparent": parent}) if parent else None
    recorded = trace.get_tracer("cqrs-accounts").start_span(
        name, context=context, start_time=start_ns,
        attributes={k: str(v) for k, v in attributes.items()})
    recorded.end(end_time=end_ns)


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, if one is being recorded."""
    if trace is None or not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")
