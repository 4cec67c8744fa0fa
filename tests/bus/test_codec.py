"""What travels on the bus decodes to what was sent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditkeep.bus import codec
from auditkeep.errors import ConflictError, CorruptionError, Pushback, StorageError
from auditkeep.log.sequencer import AppendResult, Receipt
from auditkeep.pipeline.prepare import Pending
from tests.log.test_sequencer import pendings

_int64 = st.integers(-(2**63), 2**63 - 1)
_json = st.recursive(
    st.none() | st.booleans() | _int64 | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8)

_pending = st.builds(
    Pending,
    id=st.text(min_size=1, max_size=80),
    explicit_id=st.booleans(),
    fields=st.just({}),
    digest=st.binary(min_size=32, max_size=32),
    personal=st.none() | st.dictionaries(st.text(max_size=20),
                                         st.tuples(st.text(max_size=32), _json).map(list),
                                         min_size=1, max_size=3),
    dedup_key=_int64,
    plain=st.booleans(),
    entry_head=st.binary(max_size=200),
    entry_tail=st.binary(max_size=200),
    raw=st.none() | st.tuples(st.text(max_size=10), st.binary(max_size=300)),
    subjects=st.lists(_int64, max_size=4).map(tuple),
)


class TestPendings:
    @given(st.lists(_pending, max_size=8))
    def test_every_field_but_fields_round_trips(self, sent: list[Pending]) -> None:
        assert codec.decode_pendings(codec.encode_pendings(sent)) == sent

    def test_prepared_events_sequence_to_the_same_entries(self) -> None:
        sent = pendings(5)
        got = codec.decode_pendings(codec.encode_pendings(sent))
        assert [p.entry(7) for p in got] == [p.entry(7) for p in sent]
        assert all(p.fields == {} for p in got)

    def test_junk_is_a_corruption_error(self) -> None:
        with pytest.raises(CorruptionError, match="does not decode"):
            codec.decode_pendings(b"\x93junk")


class TestReplies:
    @given(st.lists(st.builds(Receipt, st.text(), st.integers(0, 2**62),
                              st.binary(min_size=32, max_size=32), st.booleans()),
                    max_size=5), st.text(), st.integers(0, 2**62))
    def test_a_result_round_trips(self, receipts: list[Receipt], note: str, size: int) -> None:
        result = AppendResult(receipts, note, size)
        assert codec.decode_reply(codec.encode_result("r1", result)) == ("r1", result)

    @pytest.mark.parametrize(("exc", "cls"), [
        (ConflictError("id e1 differs"), ConflictError),
        (Pushback("full", retry_after=7), Pushback),
        (RuntimeError("boom"), StorageError),
    ])
    def test_an_error_arrives_as_its_class(self, exc: Exception, cls: type) -> None:
        request, got = codec.decode_reply(codec.encode_error("r2", exc))
        assert request == "r2" and type(got) is cls
        assert str(got) == str(exc)
        if isinstance(exc, Pushback):
            assert isinstance(got, Pushback) and got.retry_after == 7


class TestSubjects:
    @pytest.mark.parametrize("name", ["acme", "a-1", "acme._access"])
    def test_a_log_name_is_one_subject_token(self, name: str) -> None:
        subject = codec.ingest_subject("auditkeep", name)
        prefix, ingest, token = subject.split(".")
        assert (prefix, ingest) == ("auditkeep", "ingest")
        assert codec.log_name(token) == name

    def test_message_ids_name_the_event_or_digest_the_batch(self) -> None:
        one, two = pendings(1), pendings(2)
        assert codec.msg_id("acme", one) == f"acme:{one[0].id}"
        batch = codec.msg_id("acme", two)
        assert batch.startswith("acme:") and len(batch) == len("acme:") + 64
        assert codec.msg_id("acme", two) == batch
