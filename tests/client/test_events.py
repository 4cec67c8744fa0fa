"""Building events on the caller's thread: ids, times, context, local checks."""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime

import pytest

from auditkeep import context
from auditkeep.client.events import build_event, encode_event, new_id, now
from auditkeep.errors import EventError

UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


class TestIds:
    def test_ids_are_uuid7_with_the_current_ms_and_unique(self) -> None:
        before = time.time_ns() // 1_000_000
        ids = [new_id() for _ in range(100_000)]
        after = time.time_ns() // 1_000_000
        assert len(set(ids)) == len(ids)
        assert all(UUID7.fullmatch(i) for i in ids)
        ms = int(ids[0].replace("-", "")[:12], 16)
        assert before <= ms <= after

    def test_a_forked_child_does_not_repeat_its_parents_ids(self) -> None:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(w, ",".join(new_id() for _ in range(100)).encode())
            os._exit(0)
        os.close(w)
        os.waitpid(pid, 0)
        with os.fdopen(r) as f:
            child = set(f.read().split(","))
        assert len(child) == 100
        assert not child & {new_id() for _ in range(100)}


def test_now_is_rfc3339_utc_with_microseconds() -> None:
    t = now()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", t)
    parsed = datetime.fromisoformat(t.replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - parsed).total_seconds()) < 1


class TestBuild:
    def test_call_fields_win_over_context_and_context_fills_the_rest(self) -> None:
        with context.scope(actor="alice", request_id="r1", trace_id="a" * 32, tenant="t1"):
            ev = build_event("a.b", None, "success", {"request_id": "r2"})
        assert ev["actor"] == {"id": "alice", "type": "user"}
        assert ev["request_id"] == "r2" and ev["trace_id"] == "a" * 32 and ev["tenant"] == "t1"
        assert UUID7.fullmatch(ev["id"]) and ev["time"].endswith("Z")

    def test_resource_and_target_tuples(self) -> None:
        ev = build_event("a.b", "x", "success", {"resource": ("order", 42, "Order 42"),
                                                 "targets": [("user", "u1")]})
        assert ev["resource"] == {"type": "order", "id": "42", "name": "Order 42"}
        assert ev["targets"] == [{"type": "user", "id": "u1"}]
        with pytest.raises(EventError, match="tuple"):
            build_event("a.b", "x", "success", {"resource": ("order",)})

    def test_opentelemetry_span_ids_are_picked_up(self) -> None:
        from opentelemetry.sdk.trace import TracerProvider

        tracer = TracerProvider().get_tracer("t")
        with tracer.start_as_current_span("op") as span:
            ev = build_event("a.b", "x", "success", {})
            sc = span.get_span_context()
        assert ev["trace_id"] == f"{sc.trace_id:032x}" and ev["span_id"] == f"{sc.span_id:016x}"
        assert "trace_id" not in build_event("a.b", "x", "success", {})


class TestLocalChecks:
    def test_metadata_limits_are_checked_before_spooling(self) -> None:
        deep: dict[str, object] = {}
        node = deep
        for _ in range(9):
            node["k"] = {}
            node = node["k"]  # type: ignore[assignment]
        with pytest.raises(EventError, match="nested too deeply"):
            encode_event(build_event("a.b", "x", "success", {"metadata": deep}))
        with pytest.raises(EventError, match="too many keys"):
            encode_event(build_event("a.b", "x", "success",
                                     {"metadata": {str(i): i for i in range(101)}}))
        with pytest.raises(EventError, match="safe range"):
            encode_event(build_event("a.b", "x", "success", {"metadata": {"n": 2**60}}))
        with pytest.raises(EventError, match="too large"):
            encode_event(build_event("a.b", "x", "success", {"metadata": {"s": "x" * 70_000}}))

    def test_encoding_leaves_the_callers_values_alone(self) -> None:
        meta = {"price": 1.5, "nested": {"f": 0.1}}
        encode_event(build_event("a.b", "x", "success", {"metadata": meta}))
        assert meta == {"price": 1.5, "nested": {"f": 0.1}}
