"""One command can be followed across the processes: its log lines share a correlation id, and
its trace continues from the POST through the outbox and Kafka into the projector."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest

from shared.observability import JsonFormatter
from tests.stack import Stack


@pytest.fixture
def json_log_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line]
    root.removeHandler(handler)
    root.setLevel(previous)


async def test_a_commands_log_lines_share_its_correlation_id_across_the_processes(
        settings, read_db, json_log_lines):
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    async with Stack(settings) as stack:
        response = await stack.commands.post(
            "/v1/customers", json={"name": "Traced", "email": f"{uuid.uuid4().hex}@example.com"},
            headers={"X-Request-ID": request_id})
        assert response.headers["X-Request-ID"] == request_id  # echoed
        assert (await stack.queries.get("/healthz")).headers["X-Request-ID"]  # made up
        customer_id = response.json()["customer_id"]
        await stack.eventually(f"/v1/customers/{customer_id}", lambda r: r.status_code == 200)

    mine = [line for line in json_log_lines() if line.get("correlation_id") == request_id]
    loggers = {line["logger"] for line in mine}
    assert {"cqrs.audit", "command_service.outbox.relay", "projector.consumer"} <= loggers
    command_id = response.json()["command_id"]
    assert all(line.get("command_id", command_id) == command_id for line in mine)
    assert any(line.get("event_id") for line in mine if line["logger"] == "projector.consumer")


async def test_a_trace_starts_at_the_post_and_continues_in_the_relay_and_the_projector(
        settings, read_db):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # set once per process
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async with Stack(settings) as stack:
        response = await stack.commands.post("/v1/customers", json={
            "name": "Spanned", "email": f"{uuid.uuid4().hex}@example.com"})
        customer_id = response.json()["customer_id"]
        await stack.eventually(f"/v1/customers/{customer_id}", lambda r: r.status_code == 200)

    spans = exporter.get_finished_spans()
    command = next(s for s in spans if s.name == "command register_customer"
                   and s.attributes.get("command_id") == response.json()["command_id"])
    trace_id = command.context.trace_id
    in_trace = {s.name: s for s in spans if s.context.trace_id == trace_id}
    assert {"command register_customer", "relay publish", "projector apply"} <= set(in_trace)
    assert in_trace["relay publish"].parent.span_id == command.context.span_id
    assert in_trace["projector apply"].parent.span_id == in_trace["relay publish"].context.span_id
