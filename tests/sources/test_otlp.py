"""OpenTelemetry logs → schema v1: bodies from the real OTel Python SDK exporters (protobuf
and JSON, sent over HTTP to a capture server), hand-made samples, and properties."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.json.http._log_exporter import (
    OTLPLogExporter as JsonLogExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

import auditkeep.sources.otlp
from auditkeep.client.events import encode_event
from auditkeep.errors import FieldProblem, PayloadTooLarge, ValidationError
from auditkeep.pipeline.validate import MAX_BODY_BYTES
from auditkeep.sources.otlp import CONTENT_JSON as JSON
from auditkeep.sources.otlp import CONTENT_PROTOBUF as PROTOBUF
from auditkeep.sources.otlp import (
    MappedLogs,
    MappedRecord,
    decode_request,
    encode_response,
    map_logs,
)

DATA = Path(__file__).parent.parent / "data" / "otlp"
MIXED = (DATA / "export_mixed.json").read_bytes()


def mapped(body: bytes, content_type: str = JSON, encoding: str | None = None) -> MappedLogs:
    out = map_logs(decode_request(body, content_type, encoding))
    for record in out.records:
        encode_event(record.event)  # every event passes the SDK's (= the server's) checks
    return out


def to_otlp_json(request: ExportLogsServiceRequest, *, enum_names: bool = True) -> bytes:
    """OTLP/JSON by protobuf's own JSON mapping, with the ids turned into hex as the OTLP
    spec wants (protobuf's mapping writes bytes as base64)."""
    obj = json_format.MessageToDict(request, use_integers_for_enums=not enum_names)
    for rl in obj.get("resourceLogs", []):
        for sl in rl.get("scopeLogs", []):
            for lr in sl.get("logRecords", []):
                for key in ("traceId", "spanId"):
                    if key in lr:
                        lr[key] = base64.b64decode(lr[key]).hex()
    return orjson.dumps(obj)


def to_protobuf(otlp_json: bytes) -> bytes:
    """The protobuf form of an OTLP/JSON body, by protobuf's JSON parser (ids: hex → base64)."""
    obj = json.loads(otlp_json)
    for rl in obj.get("resourceLogs", []):
        for sl in rl.get("scopeLogs", []):
            for lr in sl.get("logRecords", []):
                for key in ("traceId", "spanId"):
                    if key in lr:
                        lr[key] = base64.b64encode(bytes.fromhex(lr[key])).decode()
    return json_format.ParseDict(obj, ExportLogsServiceRequest()).SerializeToString()


def attr(key: str, value: Any) -> KeyValue:
    return KeyValue(key=key, value=any_value(value))


def any_value(value: Any) -> AnyValue:
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        out = AnyValue()
        out.array_value.SetInParent()
        out.array_value.values.extend(any_value(v) for v in value)
        return out
    if isinstance(value, dict):
        out = AnyValue()
        out.kvlist_value.SetInParent()
        out.kvlist_value.values.extend(attr(k, v) for k, v in value.items())
        return out
    return AnyValue(string_value=value)


def request_of(*records: LogRecord, resource: dict[str, Any] | None = None
               ) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    rl.resource.attributes.extend(attr(k, v) for k, v in (resource or {}).items())
    sl = rl.scope_logs.add()
    sl.scope.name = "test"
    sl.log_records.extend(records)
    return request


def audit_record(attributes: dict[str, Any] | None = None, **fields: Any) -> LogRecord:
    attrs = {"audit.action": "orders.delete", "enduser.id": "alice", **(attributes or {})}
    fields.setdefault("time_unix_nano", 1_731_513_250_595_141_123)
    return LogRecord(attributes=[attr(k, v) for k, v in attrs.items()], **fields)


def one_event(*records: LogRecord, resource: dict[str, Any] | None = None) -> dict[str, Any]:
    (record,) = mapped(request_of(*records, resource=resource).SerializeToString(),
                       PROTOBUF).records
    return record.event


def test_exported_members() -> None:
    module = auditkeep.sources.otlp
    assert module.__all__ == sorted(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name)


# -- the real OpenTelemetry Python SDK ------------------------------------------------


@dataclass
class Captured:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CaptureServer:
    """A loopback HTTP server standing in for auditkeep: records what exporters send."""

    url: str
    requests: list[Captured] = field(default_factory=list)


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    seen: list[Captured] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen.append(Captured(self.path, headers, body))
            answer = encode_response(headers["content-type"])
            self.send_response(200)
            self.send_header("Content-Type", headers["content-type"])
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield CaptureServer(f"http://127.0.0.1:{server.server_port}/v1/otlp/v1/logs", seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


RESOURCE = {"service.name": "shop", "service.version": "2.1.0", "host.name": "shop-1",
            "deployment.environment.name": "prod"}


@pytest.fixture
def audit_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("shop.audit")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger
    logger.handlers.clear()
    logger.filters.clear()


def emit_in_span(logger: logging.Logger, provider: LoggerProvider) -> tuple[str, str, int]:
    """An audit record and an ordinary log line inside a span; the span's trace and span
    ids and the audit record's creation time in ns."""
    logger.addHandler(LoggingHandler(logger_provider=provider))
    tracer = TracerProvider().get_tracer("shop")
    with tracer.start_as_current_span("DELETE /orders/42") as span:
        ctx = span.get_span_context()
        record_created: list[float] = []

        class Created(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                record_created.append(record.created)
                return True

        logger.addFilter(Created())
        logger.warning("order 42 deleted", extra={
            "audit.action": "orders.delete", "audit.outcome": "success",
            "audit.resource.type": "order", "audit.resource.id": 42,
            "enduser.id": "alice", "client.address": "192.0.2.7",
            "user_agent.original": "shop-web/2.1", "order.total": 99.5,
            "order.items": ["sku-1", "sku-2"]})
        logger.info("cache refreshed")  # no audit.action: not an audit record
    provider.shutdown()
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", int(record_created[0] * 1e9)


def assert_the_audit_record(records: list[MappedRecord], trace_id: str, span_id: str,
                            created_ns: int) -> None:
    (record,) = records
    ev = record.event
    assert ev["action"] == "orders.delete"
    assert ev["actor"] == {"id": "alice", "type": "user", "ip": "192.0.2.7",
                           "user_agent": "shop-web/2.1"}
    assert ev["outcome"] == "success"
    assert ev["resource"] == {"type": "order", "id": "42"}
    assert ev["reason"] == "order 42 deleted"
    assert ev["severity"] == "warning"
    assert (ev["trace_id"], ev["span_id"]) == (trace_id, span_id)
    assert ev["time"].endswith(f".{created_ns % 1_000_000_000 // 1000:06d}Z")
    assert ev["time"] == auditkeep.sources.otlp._rfc3339(created_ns)
    assert ev["source"] == {"service": "shop", "version": "2.1.0", "host": "shop-1",
                            "environment": "prod"}
    assert ev["id"].startswith("otlp:")
    assert ev["metadata"]["attributes"] == {"order.total": 99.5,
                                            "order.items": ["sku-1", "sku-2"]}
    assert ev["metadata"]["severity_text"] == "WARN"
    assert ev["metadata"]["scope"] == {"name": "shop.audit"}
    assert ev["metadata"]["resource"]["telemetry.sdk.language"] == "python"
    assert "192.0.2.7" not in json.dumps(ev["metadata"])  # personal: only as actor.ip


class TestRealSdk:
    def test_protobuf_exporter_batches_reach_the_mapper(
            self, capture: CaptureServer, audit_logger: logging.Logger) -> None:
        provider = LoggerProvider(resource=Resource.create(RESOURCE))
        provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(
            endpoint=capture.url, headers={"Authorization": "Bearer ak_test"}),
            schedule_delay_millis=60_000))  # exported at shutdown, as one batch
        trace_id, span_id, created = emit_in_span(audit_logger, provider)

        (sent,) = capture.requests  # one batch holding both records
        assert sent.path == "/v1/otlp/v1/logs"
        assert sent.headers["content-type"] == PROTOBUF
        assert sent.headers["authorization"] == "Bearer ak_test"
        result = mapped(sent.body, sent.headers["content-type"])
        assert result.skipped == 1
        assert_the_audit_record(result.records, trace_id, span_id, created)
        (record,) = result.records
        assert record.raw_format == "otlp.protobuf"
        assert record.pointer == "/resourceLogs/0/scopeLogs/0/logRecords/0"
        original = ExportLogsServiceRequest.FromString(sent.body)
        assert record.raw == original.resource_logs[0].scope_logs[0].log_records[0] \
            .SerializeToString()

    def test_json_exporter_records_keep_their_exact_bytes(
            self, capture: CaptureServer, audit_logger: logging.Logger) -> None:
        provider = LoggerProvider(resource=Resource.create(RESOURCE))
        provider.add_log_record_processor(SimpleLogRecordProcessor(JsonLogExporter(
            endpoint=capture.url)))
        trace_id, span_id, created = emit_in_span(audit_logger, provider)

        assert len(capture.requests) == 2  # the simple processor sends each record alone
        audit, plain = (mapped(r.body, r.headers["content-type"]) for r in capture.requests)
        assert capture.requests[0].headers["content-type"] == JSON
        assert (len(plain.records), plain.skipped) == (0, 1)
        assert_the_audit_record(audit.records, trace_id, span_id, created)
        (record,) = audit.records
        assert record.raw_format == "otlp.json"
        body = capture.requests[0].body
        assert record.raw in body  # a slice of the body, byte for byte
        assert json.loads(record.raw) == json.loads(body)["resourceLogs"][0]["scopeLogs"][0][
            "logRecords"][0]

    def test_the_same_record_maps_alike_from_both_exporters(
            self, capture: CaptureServer, audit_logger: logging.Logger) -> None:
        provider = LoggerProvider(resource=Resource.create(RESOURCE))
        for exporter in (OTLPLogExporter(endpoint=capture.url),
                         JsonLogExporter(endpoint=capture.url)):
            provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        emit_in_span(audit_logger, provider)

        by_type: dict[str, list[dict[str, Any]]] = {PROTOBUF: [], JSON: []}
        for sent in capture.requests:
            content_type = sent.headers["content-type"]
            by_type[content_type] += [r.event for r in mapped(sent.body, content_type).records]
        assert len(by_type[PROTOBUF]) == 1
        assert by_type[PROTOBUF] == by_type[JSON]  # the id too: it does not hash encodings

    @pytest.mark.parametrize("compression", [Compression.Gzip, Compression.Deflate])
    def test_compressed_exports_are_inflated(self, capture: CaptureServer,
                                             audit_logger: logging.Logger,
                                             compression: Compression) -> None:
        provider = LoggerProvider(resource=Resource.create(RESOURCE))
        provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(
            endpoint=capture.url, compression=compression)))
        trace_id, span_id, created = emit_in_span(audit_logger, provider)

        audit = capture.requests[0]
        assert audit.headers["content-encoding"] == compression.value
        result = mapped(audit.body, audit.headers["content-type"],
                        audit.headers["content-encoding"])
        assert_the_audit_record(result.records, trace_id, span_id, created)


# -- hand-made payloads ---------------------------------------------------------------


class TestHandMadeSample:
    def test_audit_records_are_mapped_and_the_others_counted(self) -> None:
        result = mapped(MIXED)
        assert result.skipped == 2
        assert [r.pointer for r in result.records] == [
            "/resourceLogs/0/scopeLogs/0/logRecords/1",
            "/resourceLogs/0/scopeLogs/1/logRecords/0",
            "/resourceLogs/1/scopeLogs/0/logRecords/0"]

    def test_every_convention_of_a_full_record(self) -> None:
        ev = mapped(MIXED).records[0].event
        assert ev == {
            "id": "0193a7c2-5b1e-7cc4-9f0a-3e2d1c4b5a69",
            "action": "invoices.refund",
            "actor": {"id": "agent-17", "type": "user", "email": "agent17@example.com",
                      "ip": "203.0.113.9", "user_agent": "billing-ui/4.2", "session_id": "s-31"},
            "outcome": "denied",
            "category": "data_change",
            "time": "2024-11-13T15:54:11.000000Z",
            "resource": {"type": "invoice", "id": "4711", "name": "INV-4711"},
            "reason": "amount above the agent's limit",
            "severity": "warning",
            "source": {"service": "billing", "version": "4.2.0", "host": "billing-7d9f",
                       "region": "eu-west-1", "environment": "prod"},
            "trace_id": "5b8efff798038103d269b633813fc60c",
            "span_id": "eee19b7ec3c1b174",
            "request_id": "req-8f2c",
            "metadata": {
                "severity_number": 13, "severity_text": "WARN",
                "observed_time": "2024-11-13T15:54:11.000900Z",
                "dropped_attributes_count": 2,
                "scope": {"name": "billing/audit", "version": "1.0.0"},
                "attributes": {
                    "audit.tenant": "someone-else",  # the token decides the tenant
                    "refund.amount": 1250.5, "refund.currency": "EUR",
                    "refund.approved": False, "refund.lines": [1, 3],
                    "refund.limit": {"max": 1000.0, "scope": "agent"},
                    "ledger.sequence": "9007199254740993",  # beyond 2**53: a string
                    "signature": "3q2+7w=="},
                "resource": {"telemetry.sdk.language": "go"},
                "body": "refund refused"},
        }
        assert "tenant" not in ev

    def test_a_job_without_event_time_uses_the_observed_time(self) -> None:
        ev = mapped(MIXED).records[1].event
        assert ev["time"] == "2024-11-13T15:55:00.000000Z"
        assert ev["actor"] == {"id": "svc-ledger", "type": "service"}
        assert ev["severity"] == "critical"
        assert ev["id"].startswith("otlp:")
        assert ev["metadata"]["body"] == {"job": "nightly-close", "rows": 3}
        assert ev["metadata"]["event_name"] == "ledger.close"
        assert ev["metadata"]["missing"] == ["time_unix_nano"]

    def test_an_anonymous_failed_login(self) -> None:
        ev = mapped(MIXED).records[2].event
        assert ev["actor"] == {"id": "unknown", "type": "anonymous", "name": "mallory",
                               "ip": "198.51.100.4"}
        assert ev["source"] == {"service": "gateway", "environment": "staging"}
        assert "trace_id" not in ev and "span_id" not in ev
        assert ev["metadata"]["missing"] == ["enduser.id"]
        assert "attributes" not in ev["metadata"]  # user.name, source.address: personal

    def test_json_raw_is_the_exact_slice_of_the_body(self) -> None:
        for record in mapped(MIXED).records:
            start = MIXED.index(record.raw)
            assert MIXED[start:start + len(record.raw)] == record.raw
            assert record.raw.startswith(b"{") and record.raw.endswith(b"}")
        obj = json.loads(MIXED)
        first = mapped(MIXED).records[0]
        assert json.loads(first.raw) == obj["resourceLogs"][0]["scopeLogs"][0]["logRecords"][1]

    def test_protobuf_of_the_same_export_maps_to_the_same_events(self) -> None:
        pb = mapped(to_protobuf(MIXED), PROTOBUF)
        js = mapped(MIXED)
        assert pb.skipped == js.skipped
        assert [r.event for r in pb.records] == [r.event for r in js.records]
        assert [r.pointer for r in pb.records] == [r.pointer for r in js.records]
        assert {r.raw_format for r in pb.records} == {"otlp.protobuf"}
        request = ExportLogsServiceRequest.FromString(to_protobuf(MIXED))
        assert pb.records[0].raw == request.resource_logs[0].scope_logs[0].log_records[1] \
            .SerializeToString()

    def test_mapping_is_deterministic(self) -> None:
        assert [r.event for r in mapped(MIXED).records] == [
            r.event for r in mapped(MIXED).records]


class TestJsonForms:
    def test_proto_field_names_are_read_as_the_collector_does(self) -> None:
        body = orjson.dumps({"resource_logs": [{"scope_logs": [{"log_records": [{
            "time_unix_nano": 1731513250000000000, "severity_number": "SEVERITY_NUMBER_INFO2",
            "trace_id": "5b8efff798038103d269b633813fc60c",
            "attributes": [{"key": "audit.action", "value": {"string_value": "a.b"}},
                           {"key": "enduser.id", "value": {"int_value": 7}}]}]}]}]})
        (record,) = mapped(body).records
        assert record.event["action"] == "a.b"
        assert record.event["actor"] == {"id": "7", "type": "user"}
        assert record.event["severity"] == "notice"
        assert record.event["time"] == "2024-11-13T15:54:10.000000Z"
        assert record.event["trace_id"] == "5b8efff798038103d269b633813fc60c"

    def test_base64_ids_from_protobufs_generic_json_mapping_are_accepted(self) -> None:
        request = request_of(audit_record(trace_id=bytes(range(1, 17)),
                                          span_id=bytes(range(1, 9))))
        body = json_format.MessageToJson(request).encode()  # base64 ids, not hex
        (record,) = mapped(body).records
        assert record.event["trace_id"] == bytes(range(1, 17)).hex()
        assert record.event["span_id"] == bytes(range(1, 9)).hex()

    def test_enum_numbers_and_names_and_null_fields(self) -> None:
        request = request_of(audit_record(severity_number=17))
        by_name, by_number = to_otlp_json(request), to_otlp_json(request, enum_names=False)
        assert b"SEVERITY_NUMBER_ERROR" in by_name and b'"severityNumber":17' in by_number
        assert mapped(by_name).records[0].event == mapped(by_number).records[0].event
        nulls = orjson.dumps({"resourceLogs": [{"resource": None, "scopeLogs": [
            {"scope": None, "logRecords": [{"timeUnixNano": None, "body": None, "attributes": [
                {"key": "audit.action", "value": {"stringValue": "x.y"}}]}]}]}]})
        (record,) = mapped(nulls).records
        assert record.event["metadata"]["missing"] == ["enduser.id", "audit.outcome",
                                                       "time_unix_nano"]

    def test_an_empty_export_is_no_records(self) -> None:
        for body, content_type in ((b"{}", JSON), (b'{"resourceLogs": []}', JSON),
                                   (b"", PROTOBUF)):
            assert mapped(body, content_type) == MappedLogs([], 0)


# -- attribute conventions, one at a time ---------------------------------------------


class TestConventions:
    def test_without_audit_action_a_record_is_skipped(self) -> None:
        request = request_of(LogRecord(attributes=[attr("enduser.id", "alice")]),
                             audit_record())
        result = mapped(request.SerializeToString(), PROTOBUF)
        assert result.skipped == 1
        assert [r.pointer for r in result.records] == [
            "/resourceLogs/0/scopeLogs/0/logRecords/1"]

    @pytest.mark.parametrize(("number", "severity"), [
        (0, None), (1, "info"), (5, "info"), (9, "info"), (10, "notice"), (12, "notice"),
        (13, "warning"), (16, "warning"), (17, "critical"), (21, "critical"), (24, "critical"),
        (25, None)])
    def test_severity_number(self, number: int, severity: str | None) -> None:
        ev = one_event(audit_record(severity_number=number))  # type: ignore[arg-type]
        assert ev.get("severity") == severity

    def test_outcome_category_and_actor_type_are_read_case_insensitively(self) -> None:
        ev = one_event(audit_record({"audit.outcome": "Success", "audit.category": "AUTH",
                                     "audit.actor.type": "System"}))
        assert (ev["outcome"], ev["category"], ev["actor"]["type"]) == (
            "success", "auth", "system")

    def test_invalid_values_are_named_and_kept_in_metadata(self) -> None:
        ev = one_event(audit_record({"audit.outcome": "maybe", "audit.category": 3,
                                     "audit.actor.type": "robot", "audit.reason": ""}))
        assert ev["outcome"] == "unknown"
        assert "category" not in ev and "reason" not in ev
        assert ev["actor"]["type"] == "user"
        assert ev["metadata"]["missing"] == [
            "audit.actor.type (invalid)", "audit.outcome (invalid)", "audit.category (invalid)",
            "audit.reason (invalid)"]
        assert ev["metadata"]["attributes"] == {"audit.outcome": "maybe", "audit.category": 3,
                                                "audit.actor.type": "robot",
                                                "audit.reason": ""}

    def test_an_unsafe_action_is_made_safe_and_the_original_kept(self) -> None:
        ev = one_event(audit_record({"audit.action": "Orders Delete/all..now"}))
        assert ev["action"] == "Orders_Delete_all._.now"
        assert ev["metadata"]["attributes"]["audit.action"] == "Orders Delete/all..now"
        assert "audit.action (invalid)" in ev["metadata"]["missing"]

    def test_an_action_that_is_not_text_is_still_recorded(self) -> None:
        for value in (["a"], "", True, {"k": "v"}):
            ev = one_event(audit_record({"audit.action": value}))
            assert ev["action"] == "otlp.invalid"
            assert "audit.action (invalid)" in ev["metadata"]["missing"]

    def test_audit_id_is_used_when_valid_and_hashed_when_not(self) -> None:
        assert one_event(audit_record({"audit.id": "evt-1"}))["id"] == "evt-1"
        hashed = one_event(audit_record({"audit.id": "not valid!"}))
        assert hashed["id"].startswith("otlp:h:")
        assert hashed["id"] == one_event(audit_record({"audit.id": "not valid!"}))["id"]
        assert hashed["metadata"]["attributes"]["audit.id"] == "not valid!"

    def test_the_default_id_changes_with_the_content_and_the_resource(self) -> None:
        a = one_event(audit_record())
        assert a["id"] == one_event(audit_record())["id"]
        assert a["id"] != one_event(audit_record(time_unix_nano=1))["id"]
        assert a["id"] != one_event(audit_record(), resource={"service.name": "other"})["id"]
        assert a["id"] != one_event(audit_record({"x": "1"}))["id"]
        assert a["id"] != one_event(audit_record({"x": 1}))["id"]  # typed: "1" is not 1

    def test_half_a_resource_is_not_guessed_at(self) -> None:
        ev = one_event(audit_record({"audit.resource.type": "order"}))
        assert "resource" not in ev
        assert ev["metadata"]["missing"] == ["audit.outcome", "audit.resource.id"]
        assert ev["metadata"]["attributes"] == {"audit.resource.type": "order"}

    def test_actor_fields_and_their_fallbacks(self) -> None:
        ev = one_event(audit_record({"enduser.id": None, "user.id": "u-9", "user.name": "bob",
                                     "user.full_name": "Bob Builder",
                                     "source.address": "198.51.100.1", "session.id": "s"}))
        assert ev["actor"] == {"id": "u-9", "type": "user", "name": "Bob Builder",
                               "ip": "198.51.100.1", "session_id": "s"}
        assert "user.name" not in ev["metadata"].get("attributes", {})

    def test_no_actor_id_is_an_unknown_actor(self) -> None:
        ev = one_event(LogRecord(attributes=[attr("audit.action", "x.y"),
                                             attr("audit.actor.type", "system")]))
        assert ev["actor"] == {"id": "unknown", "type": "system"}
        assert "enduser.id" in ev["metadata"]["missing"]

    def test_source_from_the_resource_and_the_old_environment_key(self) -> None:
        ev = one_event(audit_record(), resource={
            "service.name": "api", "deployment.environment": "dev", "cloud.region": "us-1",
            "service.version": 3})
        assert ev["source"] == {"service": "api", "region": "us-1", "environment": "dev"}
        assert ev["metadata"]["resource"] == {"service.version": 3}

    def test_zero_ids_are_left_out(self) -> None:
        ev = one_event(audit_record(trace_id=bytes(16), span_id=bytes(8)))
        assert "trace_id" not in ev and "span_id" not in ev

    def test_without_any_time_the_server_time_is_used(self) -> None:
        ev = one_event(audit_record(time_unix_nano=0))
        assert "time" not in ev
        assert "time_unix_nano" in ev["metadata"]["missing"]

    def test_a_structured_body_goes_to_metadata(self) -> None:
        body = any_value({"order": 42, "lines": [1.5, float("nan"), b"\x00"]})
        ev = one_event(audit_record(body=body))
        assert "reason" not in ev
        assert ev["metadata"]["body"] == {"order": 42, "lines": [1.5, "NaN", "AA=="]}

    def test_odd_values_become_valid_metadata(self) -> None:
        ev = one_event(audit_record({"big": -(2**63), "inf": float("-inf"), "empty": None,
                                     "list": [], "map": {}, "bytes": b"\xff" * 4}))
        assert ev["metadata"]["attributes"] == {
            "big": str(-(2**63)), "inf": "-Infinity", "empty": None, "list": [], "map": {},
            "bytes": "/////w=="}

    def test_metadata_keeps_eight_levels(self) -> None:
        deep: Any = "bottom"
        for _ in range(10):
            deep = {"d": deep}
        ev = one_event(audit_record({"deep": deep}))
        # metadata is depth 1, attributes 2, "deep" 3: five more objects, the last one empty
        assert ev["metadata"]["attributes"]["deep"]["d"]["d"]["d"]["d"]["d"] == {}
        assert ev["metadata"]["truncated"] == ["/metadata/attributes/deep/d/d/d/d/d/d"]

    def test_many_attributes_are_cut_at_the_key_budget(self) -> None:
        ev = one_event(audit_record({f"k{i:03d}": i for i in range(300)}))
        assert 80 < len(ev["metadata"]["attributes"]) < 100
        assert "/metadata/attributes" in ev["metadata"]["truncated"]

    def test_huge_values_are_clipped_to_fit_64_kib(self) -> None:
        big = "x" * 200_000
        ev = one_event(audit_record({
            "audit.reason": big, "enduser.id": big, "user_agent.original": big,
            "audit.resource.type": big, "audit.resource.id": big, "audit.request_id": big,
            **{f"k{i}": big for i in range(40)}}, body=any_value({"b": big})),
            resource={"service.name": big, "r": big})
        assert len(ev["reason"]) == 1024
        assert len(ev["actor"]["id"]) == 256
        truncated = ev["metadata"]["truncated"]
        assert {"/reason", "/actor/id", "/actor/user_agent", "/resource/type", "/resource/id",
                "/request_id", "/source/service", "/metadata/body",
                "/metadata/attributes"} <= set(truncated)
        assert len(orjson.dumps(ev)) <= 60 * 1024


# -- malformed exports ---------------------------------------------------------------


def problems_of(body: bytes, content_type: str = JSON,
                encoding: str | None = None) -> list[tuple[str, str | None]]:
    with pytest.raises(ValidationError) as info:
        decode_request(body, content_type, encoding)
    return [(p.pointer, p.actual) for p in info.value.problems]


class TestMalformed:
    def test_every_bad_field_is_named_at_once(self) -> None:
        body = orjson.dumps({"resourceLogs": [{
            "resource": {"attributes": {"key": "service.name"}},
            "scopeLogs": [{"scope": "gateway", "logRecords": [
                {"timeUnixNano": "soon", "traceId": "abc", "spanId": "zzzzzzzzzzzzzzzz",
                 "severityNumber": "LOUD", "flags": -1, "attributes": [
                     {"key": 5, "value": {"stringValue": "x"}},
                     {"key": "a", "value": {"stringValue": "x", "intValue": "1"}},
                     {"key": "b", "value": {"intValue": "1e3"}},
                     {"key": "c", "value": {"bytesValue": "!!"}},
                     {"key": "d", "value": {"arrayValue": {"values": {}}}},
                     {"key": "e", "value": {"boolValue": "yes"}}]},
                ["not a record"]]}]}]})
        at = "/resourceLogs/0/scopeLogs/0/logRecords/0"
        assert problems_of(body) == [
            ("/resourceLogs/0/resource/attributes", "object"),
            ("/resourceLogs/0/scopeLogs/0/scope", "str"),
            (f"{at}/timeUnixNano", "str"),
            (f"{at}/severityNumber", "str"),
            (f"{at}/attributes/0/key", "int"),
            (f"{at}/attributes/1/value", "stringValue, intValue"),
            (f"{at}/attributes/2/value/intValue", "str"),
            (f"{at}/attributes/3/value/bytesValue", "str"),
            (f"{at}/attributes/4/value/arrayValue/values", "object"),
            (f"{at}/attributes/5/value/boolValue", "str"),
            (f"{at}/flags", "int"),
            (f"{at}/traceId", "str"),
            (f"{at}/spanId", "str"),
            ("/resourceLogs/0/scopeLogs/0/logRecords/1", "array"),
        ]

    def test_malformed_json_and_wrong_envelope_types(self) -> None:
        assert problems_of(b'{"resourceLogs": [')[0][0] == "/"
        assert problems_of(b"[]") == [("/", "array")]
        assert problems_of(b'{"resourceLogs": [{"scopeLogs": [{"logRecords": 3}]}]}') == [
            ("/resourceLogs/0/scopeLogs/0/logRecords", "int")]
        for bad_utf8 in (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": ["\xff"]}]}]}',
                         b'{"\xff": 1}', b'{"resourceLogs": [{"resource": {"a": "\xff"}}]}'):
            assert problems_of(bad_utf8) == [("/", f"byte {bad_utf8.index(0xFF)}")]

    def test_malformed_protobuf(self) -> None:
        assert problems_of(b"\x0a\xff\xff", PROTOBUF) == [("/", "undecodable bytes")]

    def test_protobuf_ids_of_the_wrong_length_are_named(self) -> None:
        body = request_of(audit_record(), audit_record(trace_id=b"\x01" * 8,
                                                       span_id=b"\x01" * 16)).SerializeToString()
        assert problems_of(body, PROTOBUF) == [
            ("/resourceLogs/0/scopeLogs/0/logRecords/1/traceId", "8 bytes"),
            ("/resourceLogs/0/scopeLogs/0/logRecords/1/spanId", "16 bytes")]

    def test_deep_json_values_are_refused(self) -> None:
        value: Any = {"stringValue": "x"}
        for _ in range(70):
            value = {"arrayValue": {"values": [value]}}
        body = orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"body": value}]}]}]})
        ((pointer, actual),) = problems_of(body)
        assert actual == "deeper" and pointer.count("/arrayValue/values/0") == 64

    def test_unknown_media_and_content_encodings(self) -> None:
        assert problems_of(b"{}", "text/plain") == [("/header/content-type", "text/plain")]
        assert problems_of(b"{}", JSON, "br") == [("/header/content-encoding", "br")]
        assert problems_of(b"not gzip", JSON, "gzip") == [("/", "undecodable bytes")]
        assert problems_of(gzip.compress(MIXED)[:-20], JSON, "gzip") == [
            ("/", "undecodable bytes")]

    def test_content_type_parameters_and_case_are_ignored(self) -> None:
        assert mapped(MIXED, "Application/JSON; charset=utf-8").skipped == 2

    def test_a_compression_bomb_is_too_large(self) -> None:
        bomb = zlib.compress(b" " * (MAX_BODY_BYTES + 10), 9)
        assert len(bomb) < 20_000
        with pytest.raises(PayloadTooLarge):
            decode_request(bomb, JSON, "deflate")
        assert mapped(gzip.compress(MIXED), JSON, "gzip").skipped == 2


# -- the response ---------------------------------------------------------------------


class TestResponse:
    def test_full_success_is_an_empty_response(self) -> None:
        assert encode_response(PROTOBUF) == b""
        assert encode_response(JSON) == b"{}"

    def test_partial_success_in_both_encodings(self) -> None:
        pb = ExportLogsServiceResponse.FromString(
            encode_response(PROTOBUF, rejected=3, message="3 records had no audit.action"))
        assert pb.partial_success.rejected_log_records == 3
        assert pb.partial_success.error_message == "3 records had no audit.action"
        assert json.loads(encode_response(JSON, rejected=3, message="m")) == {
            "partialSuccess": {"rejectedLogRecords": "3", "errorMessage": "m"}}


# -- properties -----------------------------------------------------------------------

KEYS = st.sampled_from([
    "audit.action", "audit.outcome", "audit.category", "audit.reason", "audit.id",
    "audit.resource.type", "audit.resource.id", "audit.resource.name", "audit.actor.type",
    "audit.request_id", "enduser.id", "user.id", "user.email", "client.address",
    "user_agent.original", "session.id"]) | st.text(max_size=12)
SCALARS = (st.none() | st.text(max_size=40) | st.booleans() | st.integers(-(2**63), 2**63 - 1)
           | st.floats() | st.binary(max_size=12) | st.sampled_from(
               ["success", "denied", "auth", "user", "a.b", "x" * 300, ""]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=6), inner, max_size=4), max_leaves=30)


@st.composite
def log_records(draw: st.DrawFn) -> LogRecord:
    attrs = draw(st.dictionaries(KEYS, VALUES, max_size=12))
    attrs.setdefault("audit.action", draw(VALUES))
    return LogRecord(
        attributes=[attr(k, v) for k, v in attrs.items()],
        time_unix_nano=draw(st.integers(0, 2**64 - 1)),
        observed_time_unix_nano=draw(st.integers(0, 2**64 - 1)),
        severity_number=draw(st.integers(0, 30)),  # type: ignore[arg-type]
        severity_text=draw(st.text(max_size=8)),
        body=any_value(draw(VALUES)),
        trace_id=draw(st.sampled_from([b"", bytes(16)]) | st.binary(min_size=16, max_size=16)),
        span_id=draw(st.sampled_from([b"", bytes(8)]) | st.binary(min_size=8, max_size=8)),
        flags=draw(st.integers(0, 2**32 - 1)),
        dropped_attributes_count=draw(st.integers(0, 2**32 - 1)),
        event_name=draw(st.text(max_size=8)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(log_records(), min_size=1, max_size=3),
       resource=st.dictionaries(st.sampled_from(["service.name", "host.name", "x"])
                                | st.text(max_size=8), VALUES, max_size=5))
def test_any_audit_record_maps_to_a_valid_event_alike_from_protobuf_and_json(
        records: list[LogRecord], resource: dict[str, Any]) -> None:
    request = request_of(*records, resource=resource)
    pb = mapped(request.SerializeToString(), PROTOBUF)  # `mapped` checks encode_event
    js = mapped(to_otlp_json(request))
    assert len(pb.records) == len(records) and pb.skipped == 0
    assert [r.event for r in pb.records] == [r.event for r in js.records]
    assert [r.raw for r in pb.records] == [r.SerializeToString() for r in records]


RECORD_FIELDS = st.sampled_from([
    "timeUnixNano", "observedTimeUnixNano", "severityNumber", "severityText", "body",
    "attributes", "droppedAttributesCount", "flags", "traceId", "spanId", "eventName",
    "time_unix_nano"])
VALUE_FIELDS = st.sampled_from([
    "key", "value", "values", "stringValue", "intValue", "doubleValue", "boolValue",
    "bytesValue", "arrayValue", "kvlistValue"])
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=10)
    | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
        ["audit.action", "5b8efff798038103d269b633813fc60c", "AQID", "NaN", "12"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(VALUE_FIELDS, inner,
                                                                max_size=3),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(record=st.dictionaries(RECORD_FIELDS, ANY_JSON, max_size=6))
def test_any_json_record_is_mapped_or_refused_naming_where(record: dict[str, Any]) -> None:
    body = json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}).encode()
    problems = []
    try:
        mapped(body)  # checks every event it maps with encode_event
    except ValidationError as exc:
        problems = exc.problems or [FieldProblem("", "a ValidationError names no field")]
    assert all(p.pointer.startswith("/resourceLogs/0/scopeLogs/0/logRecords/0")
               for p in problems)
