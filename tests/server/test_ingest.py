"""POST /v1/events against a real server process: receipts, durability, idempotency."""

from __future__ import annotations

import base64

import orjson

from auditkeep.log.checkpoint import open_checkpoint
from tests.conftest import ServerProcess
from tests.server.helpers import assert_included, checkpoint, event, size_of, verifiers


class TestIngest:
    def test_one_event_gets_a_receipt_covered_by_a_signed_checkpoint(
            self, server: ServerProcess) -> None:
        with server.client() as c:
            r = c.post("/v1/events", json=event(1))
            assert r.status_code == 201, r.text
            body = r.json()
            (receipt,) = body["receipts"]
            assert receipt["seq"] == 0
            assert len(base64.b64decode(receipt["leaf_hash"])) == 32
            cp, note = open_checkpoint(body["checkpoint"], verifiers(c))
            assert cp.origin == "auditkeep.local/default"
            assert cp.size == 1
            assert len(note.verified) == 1
            assert_included(c, "default", 0, cp)

    def test_array_and_ndjson_bodies_are_sequenced_in_order(self, server: ServerProcess) -> None:
        with server.client() as c:
            r = c.post("/v1/events", json=[event(i) for i in range(5)])
            assert r.status_code == 201
            assert [x["seq"] for x in r.json()["receipts"]] == [0, 1, 2, 3, 4]
            nd = b"\n".join(orjson.dumps(event(i)) for i in range(5, 8)) + b"\n"
            r = c.post("/v1/events", content=nd,
                       headers={"Content-Type": "application/x-ndjson"})
            assert r.status_code == 201, r.text
            assert [x["seq"] for x in r.json()["receipts"]] == [5, 6, 7]
            cp = checkpoint(c)
            for seq in (0, 4, 7):
                assert_included(c, "default", seq, cp)

    def test_server_fields_are_added_and_time_normalised_to_utc(
            self, server: ServerProcess) -> None:
        with server.client() as c:
            r = c.post("/v1/events", json=event(1, time="2026-03-01T12:00:00.5+02:00"))
            seq = r.json()["receipts"][0]["seq"]
            rec = c.get(f"/v1/logs/default/entries/{seq}").json()
            assert rec["time"] == "2026-03-01T10:00:00.500000Z"
            assert rec["received"].endswith("Z")
            assert rec["seq"] == seq
            assert rec["v"] == 1
            assert rec["tenant"] == "default"
            assert rec["submitter"].startswith("tok_")
            assert rec["category"] == "data_change"

    def test_missing_id_gets_a_uuid7(self, server: ServerProcess) -> None:
        with server.client() as c:
            rid = c.post("/v1/events", json=event(1)).json()["receipts"][0]["id"]
            assert rid[14] == "7" and len(rid) == 36


class TestIdempotency:
    def test_same_id_same_content_returns_the_original_receipt(
            self, server: ServerProcess) -> None:
        with server.client() as c:
            first = c.post("/v1/events", json=event(1, id="evt-1")).json()["receipts"][0]
            again = c.post("/v1/events", json=event(1, id="evt-1"))
            assert again.status_code == 200
            dup = again.json()["receipts"][0]
            assert dup == {**first, "duplicate": True}
            assert size_of(c) == 1

    def test_same_id_different_content_is_409_naming_both_digests(
            self, server: ServerProcess) -> None:
        with server.client() as c:
            c.post("/v1/events", json=event(1, id="evt-1"))
            r = c.post("/v1/events", json=event(2, id="evt-1"))
            assert r.status_code == 409
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["detail"].count("sha256") == 2
            assert size_of(c) == 1

    def test_duplicates_inside_a_mixed_batch_store_only_the_new_events(
            self, server: ServerProcess) -> None:
        with server.client() as c:
            c.post("/v1/events", json=event(1, id="a"))
            r = c.post("/v1/events", json=[event(1, id="a"), event(2, id="b")])
            assert r.status_code == 201
            rs = r.json()["receipts"]
            assert rs[0]["duplicate"] is True and rs[0]["seq"] == 0
            assert "duplicate" not in rs[1] and rs[1]["seq"] == 1
