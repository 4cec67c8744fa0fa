"""The entry bytes the sequencer stores (`Pending.entry`) are RFC 8785 of the full record,
whatever the event holds, and prepare's shortcuts give what the general paths give."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from auditkeep.log.canonical import reference_canonical_bytes
from auditkeep.pipeline.prepare import encode, format_time, prepare
from auditkeep.pipeline.validate import decode_events

keys = st.text(min_size=1, max_size=8)  # includes astral characters, where key order differs
scalars = (st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10))
free_form = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(keys, inner, max_size=3), max_leaves=8)
short = st.text(min_size=1, max_size=6)
optional = st.fixed_dictionaries({}, optional={
    "id": st.from_regex(r"[A-Za-z0-9._:-]{1,20}", fullmatch=True),
    "time": st.datetimes(timezones=st.just(UTC) | st.just(timezone(timedelta(hours=-3))))
    .map(lambda d: d.isoformat()),
    "resource": st.fixed_dictionaries({"type": short, "id": short}),
    "targets": st.lists(st.fixed_dictionaries({"type": short, "id": short}), max_size=2),
    "reason": short,
    "severity": st.sampled_from(["info", "critical"]),
    "source": st.fixed_dictionaries({}, optional={"service": short, "region": short}),
    "trace_id": st.just("0af7651916cd43dd8448eb211c80319c"),
    "span_id": st.just("b7ad6b7169203331"),
    "request_id": short,
    "changes": st.lists(st.fixed_dictionaries({"field": short}, optional={
        "before": free_form, "after": free_form}), max_size=2),
    "metadata": st.dictionaries(keys, free_form, max_size=5),
})
actors = st.fixed_dictionaries({"id": short, "type": st.just("user")}, optional={
    "name": short, "email": short, "ip": short, "user_agent": short, "session_id": short})


class TestEntryBytes:
    @settings(max_examples=300, deadline=None)
    @given(optional, actors, st.integers(0, 2**40))
    def test_entry_is_rfc8785_of_the_record_with_its_seq(
            self, extra: dict[str, Any], actor: dict[str, Any], seq: int) -> None:
        body = orjson.dumps({"action": "a.b", "actor": actor, "outcome": "success", **extra})
        (p,) = prepare(decode_events(body, ndjson=False), tenant="t", submitter="tok_x",
                       may_set_tenant=False)
        entry = p.entry(seq)
        assert entry == encode({**p.fields, "seq": seq}, p.plain)
        assert entry == reference_canonical_bytes(json.loads(entry, parse_int=float))
        assert json.loads(entry)["seq"] == seq


class TestTimes:
    @settings(max_examples=500, deadline=None)
    @given(st.datetimes(timezones=st.just(UTC) | st.just(timezone(timedelta(hours=5)))))
    def test_stored_time_is_format_time_of_the_sent_time(self, when: datetime) -> None:
        body = orjson.dumps({"action": "a.b", "actor": {"id": "x", "type": "user"},
                             "outcome": "success", "time": msgspec.to_builtins(when)})
        (p,) = prepare(decode_events(body, ndjson=False), tenant="t", submitter="tok_x",
                       may_set_tenant=False)
        assert p.fields["time"] == format_time(when)
