"""RFC 5424 / RFC 3164 messages as schema v1 events; no input makes the mapping fail."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from auditkeep.pipeline.validate import decode_events
from auditkeep.sources.syslog import map_message


def valid(ev: dict[str, object]) -> None:
    decode_events(orjson.dumps(ev), ndjson=False)  # raises unless schema v1 accepts it


class TestRfc5424:
    def test_fields_structured_data_and_audit_element(self) -> None:
        ev = map_message(b'<165>1 2026-01-02T03:04:05.5Z host-a app-b 77 LOGIN '
                         b'[audit@1 action="users.login" actor="dave" actor.type="service" '
                         b'outcome="denied" reason="bad key" extra="x"]'
                         b'[meta@2 zone="eu\\"1"] \xef\xbb\xbftext')
        valid(ev)
        assert ev["action"] == "users.login" and ev["outcome"] == "denied"
        assert ev["actor"] == {"id": "dave", "type": "service"}
        assert ev["time"] == "2026-01-02T03:04:05.500000Z"
        assert ev["severity"] == "notice" and ev["metadata"]["facility"] == 20
        assert ev["reason"] == "bad key"  # the element's reason wins over the message
        assert ev["metadata"]["audit"] == {"extra": "x"}
        assert ev["metadata"]["sd"] == {"meta@2": {"zone": 'eu"1'}}
        assert ev["metadata"]["msgid"] == "LOGIN" and ev["category"] == "data_change"

    def test_without_audit_element_the_host_acts(self) -> None:
        ev = map_message(b"<11>1 2026-01-02T03:04:05Z db-1 postgres - - - out of memory")
        valid(ev)
        assert ev["action"] == "syslog.postgres" and ev["actor"] == {"id": "db-1",
                                                                     "type": "system"}
        assert ev["severity"] == "critical" and ev["category"] == "system"
        assert ev["outcome"] == "unknown" and ev["reason"] == "out of memory"

    def test_bad_audit_values_are_left_out_and_named(self) -> None:
        ev = map_message(b'<14>1 - h a - - [audit@1 action="not an action!" category="x" '
                         b'trace_id="zz"] m')
        valid(ev)
        assert ev["action"] == "syslog.a"
        assert "audit.action" in ev["metadata"]["missing"]
        assert "category" not in ev or ev["category"] != "x"
        assert "trace_id" not in ev


def test_rfc3164_takes_the_receive_year() -> None:
    ev = map_message(b"<38>Feb  3 04:05:06 bastion sshd[811]: Accepted",
                     received=datetime(2027, 5, 1, tzinfo=UTC))
    valid(ev)
    assert ev["time"] == "2027-02-03T04:05:06.000000Z"
    assert ev["action"] == "syslog.sshd" and ev["metadata"]["procid"] == "811"


def test_ids_are_deterministic_so_a_resend_is_stored_once() -> None:
    a = map_message(b"<13>Jan  1 00:00:00 h t: same")
    b = map_message(b"<13>Jan  1 00:00:00 h t: same\n")
    assert a["id"] == b["id"] and a["id"].startswith("syslog:")


def test_a_long_message_keeps_its_whole_text_in_metadata() -> None:
    ev = map_message(b"<13>1 - h a - - - " + b"x" * 5000)
    valid(ev)
    assert len(ev["reason"]) == 1024 and len(ev["metadata"]["message"]) == 5000


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.builds(
    lambda pri, body: b"<%d>1 %b" % (pri, body), st.integers(0, 999), st.binary(max_size=200)))
def test_any_bytes_map_to_a_valid_event(raw: bytes) -> None:
    valid(map_message(raw, peer="127.0.0.1:514"))
