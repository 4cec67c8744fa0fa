"""`POST /v1/otlp/v1/logs` with the real OpenTelemetry Python SDK exporter pointed at a
real server: audit records become events, other logs are skipped."""

from __future__ import annotations

import time

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from tests.conftest import ServerProcess
from tests.server.helpers import size_of
from tests.sources.test_otlp import RESOURCE, audit_logger, emit_in_span  # noqa: F401


def test_the_sdk_exporter_ships_audit_records(server: ServerProcess,
                                              audit_logger) -> None:  # noqa: F811
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(
        endpoint=f"{server.url}/v1/otlp/v1/logs",
        headers={"Authorization": f"Bearer {server.admin_token}"})))
    trace_id, span_id, _ = emit_in_span(audit_logger, provider)
    with server.client() as c:
        deadline = time.monotonic() + 20
        found: list[dict[str, object]] = []
        while not found and time.monotonic() < deadline:
            found = c.get("/v1/events", params={"action": "orders.delete"}).json()["events"]
            time.sleep(0.1)
        (ev,) = found
        assert ev["trace_id"] == trace_id and ev["span_id"] == span_id
        assert ev["actor"]["id"] == "alice" and ev["source"]["service"] == "shop"
        raw = c.get(f"/v1/events/{ev['id']}/raw")
        assert raw.headers["content-type"] == "application/x-protobuf"
        assert len(raw.content) == ev["raw"]["size"]  # type: ignore[index]
        assert size_of(c) == 1  # the ordinary log line was skipped


def test_malformed_exports_are_problems(server: ServerProcess) -> None:
    with server.client() as c:
        r = c.post("/v1/otlp/v1/logs", content=b"\x0a\xff\xff",
                   headers={"Content-Type": "application/x-protobuf"})
        assert r.status_code == 400
        assert r.headers["content-type"] == "application/problem+json"
        r = c.post("/v1/otlp/v1/logs", content=b'{"resourceLogs": 3}',
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["errors"][0]["pointer"] == "/resourceLogs"
        assert size_of(c) == 0
