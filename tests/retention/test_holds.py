"""Legal holds on a real SQLite data directory: which records a hold keeps, and that
creating and releasing one are records in the tenant's log."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import msgspec
import pytest

from auditkeep.datadir import Node
from auditkeep.errors import ConflictError, NotFoundError, Pushback, ValidationError
from auditkeep.log.service import LogService, access_log_name
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.schema import Event
from auditkeep.query.lang import parse
from auditkeep.query.predicate import matches
from auditkeep.retention.holds import (
    HOLD_CREATE_ACTION,
    HOLD_RELEASE_ACTION,
    HoldMatcher,
    active_matcher,
    create_hold,
    release_hold,
)

TENANT = "acme"


def ingest(n: Node, events: list[dict[str, Any]], log: str = TENANT,
           raws: list[Any] | None = None) -> list[dict[str, Any]]:
    pendings = prepare(msgspec.convert(events, list[Event]), tenant=TENANT, submitter="test",
                       may_set_tenant=True, raws=raws)
    seqs = [r.seq for r in n.logs.append(log, pendings).result().receipts]
    return n.logs.records(log, seqs, personal=False)


def ev(actor: str, action: str = "iam.user.create", time: str = "2026-03-10T12:00:00Z",
       **more: Any) -> dict[str, Any]:
    return {"action": action, "outcome": "success", "time": time,
            "actor": {"id": actor, "type": "user", "email": f"{actor}@example.org"},
            "resource": {"type": "user", "id": "u-9"}, **more}


def hold(n: Node, query: str, tenant: str = TENANT, **kw: Any) -> Any:
    return create_hold(n.logs, tenant, query, "matter 2026-17", created_by="tok_test", **kw)


class TestMatcher:
    def test_no_active_hold_is_a_constant_false(self, node: Node) -> None:
        assert not isinstance(active_matcher(node.store, TENANT), HoldMatcher)
        rec = ingest(node, [ev("alice")])[0]
        h = hold(node, "actor:alice")
        release_hold(node.logs, TENANT, h.id, released_by="tok_test", reason="case closed")
        m = active_matcher(node.store, TENANT)
        assert not isinstance(m, HoldMatcher) and not m(rec)

    def test_the_query_decides(self, node: Node) -> None:
        alice, bob, login = ingest(node, [ev("alice"), ev("bob"),
                                          ev("alice", action="auth.login")])
        hold(node, "actor:alice action:iam.*")
        m = active_matcher(node.store, TENANT)
        assert m(alice) and not m(bob) and not m(login)

    def test_free_text_and_metadata_queries_match_as_search_does(self, node: Node) -> None:
        a, b = ingest(node, [ev("carol", metadata={"ticket": "INC-4711"}),
                             ev("dave", metadata={"ticket": "INC-1"})])
        hold(node, "metadata.ticket:INC-4711 OR dave")
        m = active_matcher(node.store, TENANT)
        assert m(a) and m(b)

    def test_the_window_is_since_inclusive_until_exclusive(self, node: Node) -> None:
        before, at_since, inside, at_until = ingest(node, [
            ev("alice", time="2026-02-28T23:59:59.999999Z"),
            ev("alice", time="2026-03-01T00:00:00Z"),
            ev("alice", time="2026-03-15T00:00:00+02:00"),
            ev("alice", time="2026-04-01T00:00:00Z")])
        hold(node, "actor:alice", since="2026-03-01", until="2026-04-01T00:00:00Z")
        m = active_matcher(node.store, TENANT)
        assert [m(r) for r in (before, at_since, inside, at_until)] == [False, True, True, False]

    def test_released_holds_and_other_tenants_holds_do_not_match(self, node: Node) -> None:
        rec = ingest(node, [ev("alice")])[0]
        other = hold(node, "actor:alice", tenant="globex")
        mine = hold(node, "actor:alice")
        assert active_matcher(node.store, TENANT)(rec)
        release_hold(node.logs, TENANT, mine.id, released_by="tok_test", reason="done")
        assert not active_matcher(node.store, TENANT)(rec)
        assert active_matcher(node.store, "globex")(rec | {"tenant": "globex"})
        assert node.store.get_hold("globex", other.id) is not None

    def test_a_hold_covers_the_access_log_with_the_same_query(self, node: Node) -> None:
        reads = ingest(node, [ev("tok_reader", action="auditkeep.read.search",
                                 category="data_access")], log=access_log_name(TENANT))
        (alice,) = ingest(node, [ev("alice")])
        hold(node, "actor:alice")
        access = active_matcher(node.store, access_log_name(TENANT))
        assert access(alice) and not access(reads[0])
        hold(node, "action:auditkeep.read.*")
        assert active_matcher(node.store, access_log_name(TENANT))(reads[0])

    def test_an_active_hold_keeps_its_own_create_record(self, node: Node) -> None:
        h = hold(node, "actor:alice", until="2020-01-01")
        (created,) = node.logs.records(TENANT, [h.record_seq], personal=False)
        assert active_matcher(node.store, TENANT)(created)

    def test_raw_fields_are_read_from_the_store_when_not_given(self, node: Node) -> None:
        raws = [("json", b'{"verb": "delete"}'), ("json", b'{"verb": "get"}')]
        deleted, got = ingest(node, [ev("k8s"), ev("k8s")], raws=raws)
        hold(node, "raw.verb:delete")
        m = active_matcher(node.store, TENANT)
        assert m(deleted) and not m(got)

    @pytest.mark.parametrize("query", [
        "actor:alice", "action:iam.*", "alice", '"INC-4711"', "metadata.ticket:INC-4711",
        "_exists_:metadata", "_exists_:actor", "time:>2026-03-10T11:00:00Z",
        "metadata.n:>5", "resource.id:u-9 -metadata.ticket:*", "raw.verb:delete OR bob",
        "seq:[0 TO 1]"])
    def test_it_agrees_with_the_search_predicate(self, node: Node, query: str) -> None:
        recs = ingest(node, [ev("alice", metadata={"ticket": "INC-4711", "n": 7}),
                             ev("bob", action="auth.login"), ev("k8s")],
                      raws=[None, None, ("json", b'{"verb": "delete"}')])
        hold(node, query)
        m = active_matcher(node.store, TENANT)
        raws = [None, None, {"verb": "delete"}]
        want = [matches(parse(query), r, raw) for r, raw in zip(recs, raws, strict=True)]
        assert [m(r) for r in recs] == want

    def test_personal_values_are_not_needed(self, node: Node) -> None:
        (rec,) = ingest(node, [ev("erin")])
        assert "$c" in rec["actor"]["email"]  # a commitment, not the address
        hold(node, "erin")
        assert active_matcher(node.store, TENANT)(rec)


class TestCreateAndRelease:
    def test_create_and_release_are_records_in_the_tenant_log(self, node: Node) -> None:
        ingest(node, [ev("alice")])
        h = hold(node, "actor:alice", since="2026-01-01T00:00:00+01:00")
        assert h.id.startswith("hold_") and len(h.id) == 17
        assert h.since == "2025-12-31T23:00:00.000000Z" and h.until is None
        (rec,) = node.logs.records(TENANT, [h.record_seq], personal=False)
        assert rec["action"] == HOLD_CREATE_ACTION and rec["category"] == "admin"
        assert rec["actor"]["id"] == "tok_test" and rec["reason"] == "matter 2026-17"
        assert rec["metadata"] == {"hold": h.id, "query": "actor:alice",
                                   "since": "2025-12-31T23:00:00.000000Z"}
        done = release_hold(node.logs, TENANT, h.id, released_by="tok_other",
                            reason="matter closed")
        stored = node.store.get_hold(TENANT, h.id)
        assert stored == done and done.released is not None
        assert done.released_by == "tok_other" and done.record_seq == h.record_seq
        (rel,) = node.logs.records(TENANT, [done.release_seq], personal=False)
        assert rel["action"] == HOLD_RELEASE_ACTION and rel["reason"] == "matter closed"
        assert rel["metadata"] == {"hold": h.id, "record_seq": h.record_seq}
        assert node.store.holds(TENANT, active=True) == []
        assert node.store.holds(TENANT, active=False) == [done]

    def test_personal_data_in_reason_and_query_is_redacted_in_the_record(
            self, node: Node) -> None:
        h = create_hold(node.logs, TENANT, '"mallory@example.com"',
                        "subpoena naming mallory@example.com", created_by="tok_test")
        (rec,) = node.logs.records(TENANT, [h.record_seq], personal=False)
        assert "mallory@example.com" not in str(rec)
        assert h.query == '"mallory@example.com"'  # the hold itself matches as asked

    def test_releasing_twice_or_an_unknown_hold_is_refused(self, node: Node) -> None:
        h = hold(node, "actor:alice")
        release_hold(node.logs, TENANT, h.id, released_by="t", reason="done")
        size = node.logs.size(TENANT)
        with pytest.raises(ConflictError, match="released already"):
            release_hold(node.logs, TENANT, h.id, released_by="t", reason="again")
        with pytest.raises(NotFoundError):
            release_hold(node.logs, TENANT, "hold_aaaaaaaaaaaa", released_by="t",
                         reason="x")
        with pytest.raises(NotFoundError):
            release_hold(node.logs, "globex", h.id, released_by="t", reason="x")
        assert node.logs.size(TENANT) == size

    def test_bad_input_names_every_field_and_appends_nothing(self, node: Node) -> None:
        with pytest.raises(ValidationError) as err:
            create_hold(node.logs, TENANT, "actor:(alice", "  ", since="yesterday",
                        until="2026-01-01T00:00:00", created_by="t")
        pointers = [p.pointer for p in err.value.problems]
        assert pointers == ["/body/query", "/body/reason", "/body/since", "/body/until"]
        assert err.value.problems[0].column is not None
        with pytest.raises(ValidationError) as err:
            create_hold(node.logs, TENANT, "actor:alice", "r", since="2026-02-01",
                        until="2026-01-01", created_by="t")
        assert [p.pointer for p in err.value.problems] == ["/body/until"]
        with pytest.raises(ValidationError) as err:
            create_hold(node.logs, TENANT, "actor.email:a@b.c", "x" * 1025, created_by="t")
        assert [p.pointer for p in err.value.problems] == ["/body/query", "/body/reason"]
        with pytest.raises(ValidationError):
            create_hold(node.logs, access_log_name(TENANT), "a", "r", created_by="t")
        assert node.store.holds() == [] and node.store.get_log(TENANT) is None


class _RefusingBus:
    """An ingest bus that is full: every append is pushed back."""

    def append(self, name: str, pendings: list[Any]) -> Future[Any]:
        f: Future[Any] = Future()
        f.set_exception(Pushback("bus full"))
        return f

    def accept(self, name: str, pendings: list[Any]) -> Future[list[str]]:
        return self.append(name, pendings)


def test_a_hold_whose_record_cannot_be_appended_is_released_again(node: Node) -> None:
    logs = LogService(node.store, node.logs.keys, appender=_RefusingBus())
    with pytest.raises(Pushback):
        create_hold(logs, TENANT, "actor:alice", "matter 1", created_by="tok_test")
    (h,) = node.store.holds(TENANT)
    assert h.released is not None and h.released_by == "auditkeep-holds"
    assert h.record_seq is None and node.store.holds(TENANT, active=True) == []
