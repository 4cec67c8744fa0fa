"""Privacy in a real server: redaction at ingest (HTTP, a source with its raw object,
the SDK), then the files on disk; erasure and subject access over HTTP; verify after."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from auditkeep.client import AuditClient, RedactionPolicy
from auditkeep.datadir import DataDir
from tests.conftest import ServerProcess, start_server
from tests.server.test_reads import token, wait_searchable

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1LTEifQ."
       "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
SECRETS = {
    "url_token": "tok9f8e7d6c5b4a",
    "password": "correct-horse-battery",
    "jwt": JWT,
    "card": "4242 4242 4242 4242",
    "aws": "AKIAQ3EGUDSZKJ2XW7LM",
    "email": "leaky.person@example.net",
    "iban": "GB82 WEST 1234 5698 7654 32",
    "k8s_token": "k8s-secret-b64-Zm9vYmFy",
    "sdk_password": "sdk-side-pw-123456",
    "sdk_email": "sdk.user@example.com",
}
CANARY = "zebracanary"  # not personal: must be found, so the grep can find things
CONFIG = """
pipeline:
  - redact:
      fields:
        - {path: metadata.card_last4, action: mask}
        - {path: metadata.customer_email, action: hash}
        - {path: metadata.national_id, action: commit}
"""


@pytest.fixture
def private(tmp_path: Path) -> Iterator[ServerProcess]:
    cfg = tmp_path / "auditkeep.yaml"
    cfg.write_text(CONFIG)
    s = start_server(DataDir(tmp_path / "data"), "--config", str(cfg), "--ingest-workers", "1")
    yield s
    s.stop()


def leaky_events() -> list[dict[str, Any]]:
    return [{
        "action": "payments.charge", "outcome": "success", "category": "data_change",
        "actor": {"id": "u-1", "type": "user", "email": "alice@example.org"},
        "resource": {"type": "payment", "id": "pay-1"},
        "reason": f"charge for {SECRETS['email']} ({CANARY})",
        "metadata": {
            "url": f"https://api.example.com/pay?token={SECRETS['url_token']}&x=1",
            "body": {"password": SECRETS["password"], "note": CANARY},
            "headers": {"Authorization": f"Bearer {SECRETS['jwt']}"},
            "card": SECRETS["card"], "aws": f"key={SECRETS['aws']}",
            "iban": SECRETS["iban"],
            "card_last4": "4000056655665556", "customer_email": "bob@example.org",
            "national_id": "AB123456C",
        }}]


def k8s_event() -> bytes:
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1",
                         "metadata": {}, "items": [{
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
        "auditID": "5d5f1c6e-0f35-4d2e-9b8f-6b2f58f0b2a1", "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/prod/secrets", "verb": "create",
        "user": {"username": "alice@example.org", "groups": ["system:authenticated"]},
        "sourceIPs": ["203.0.113.7"], "userAgent": "kubectl/v1.29.0",
        "objectRef": {"resource": "secrets", "namespace": "prod", "name": "db",
                      "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestObject": {"kind": "Secret", "stringData": {"password": SECRETS["k8s_token"]},
                          "metadata": {"annotations": {"owner": SECRETS["email"]}}},
        "requestReceivedTimestamp": "2026-12-07T10:00:00.000000Z",
        "stageTimestamp": "2026-12-07T10:00:00.100000Z"}]})


def files_of(data: DataDir) -> list[Path]:
    return sorted(p for p in data.root.rglob("*") if p.is_file())


class TestRedactionAtIngest:
    def test_nothing_redacted_reaches_disk_the_index_or_an_answer(
            self, private: ServerProcess, tmp_path: Path) -> None:
        with private.client() as c:
            r = c.post("/v1/events", json=leaky_events())
            assert r.status_code in (200, 201), r.text
            event_id = r.json()["receipts"][0]["id"]
            r = c.post("/v1/sources/k8s", content=k8s_event())
            assert r.status_code in (200, 201), r.text
            k8s_id = r.json()["receipts"][0]["id"]
        spool = tmp_path / "spool"
        sdk = AuditClient(private.url, private.admin_token, spool_dir=spool,
                          redaction=RedactionPolicy())
        sdk.emit("users.login", actor={"id": "u-2", "type": "user"},
                 metadata={"password": SECRETS["sdk_password"],
                           "contact": f"mail {SECRETS['sdk_email']}"})
        assert sdk.flush(10)
        sdk.close()
        with private.client() as c:
            wait_searchable(c, 3)
            assert c.get("/v1/search", params={"query": CANARY}).json()["events"]
            rec = c.get(f"/v1/events/{event_id}").json()["record"]
            meta = rec["metadata"]
            assert meta["card_last4"] == "************5556"
            assert meta["customer_email"].startswith("pn_")
            assert meta["national_id"] == "AB123456C"  # admin sees committed values
            fired = {(x["path"], x["rule"]) for x in rec["redactions"]}
            assert {("/metadata/url", "secret_param"), ("/metadata/body/password", "secret_key"),
                    ("/metadata/card", "card"), ("/reason", "email"),
                    ("/metadata/national_id", "commit")} <= fired
            raw = c.get(f"/v1/events/{k8s_id}/raw")
            assert raw.status_code == 200
            k8s_rec = c.get(f"/v1/events/{k8s_id}").json()["record"]
            assert any(x["path"].startswith("/raw/") for x in k8s_rec["redactions"])
            answers = [orjson.dumps(rec), raw.content, orjson.dumps(k8s_rec),
                       c.get("/v1/events", params={"limit": 100}).content]
            reader = token(private, "read")
        with private.client(reader) as c:
            plain = c.get(f"/v1/events/{event_id}").json()["record"]
            assert set(plain["metadata"]["national_id"]) == {"$c"}
            assert "AB123456C" not in c.get(f"/v1/events/{event_id}").text
        with private.client() as c:
            metrics = c.get("/metrics").text
        assert 'auditkeep_redactions_total{rule="card",tenant="default"}' in metrics
        private.stop()
        for blob in answers:
            for name, secret in SECRETS.items():
                assert secret.encode() not in blob, name
        found_canary = False
        for path in [*files_of(private.data), *files_of(DataDir(spool))]:
            data = path.read_bytes()
            found_canary |= CANARY.encode() in data
            for name, secret in SECRETS.items():
                assert secret.encode() not in data, f"{name} in {path}"
        assert found_canary  # the search index holds plain text: the grep is meaningful


class TestErasureOverHttp:
    def test_erase_then_subject_access_search_and_verify(self, server: ServerProcess) -> None:
        email = "erin.subject@example.org"
        with server.client() as c:
            evs = [{"action": "docs.read", "outcome": "success",
                    "actor": {"id": "erin", "type": "user", "email": email,
                              "ip": "198.51.100.4"},
                    "resource": {"type": "doc", "id": f"d{i}"}} for i in range(3)]
            evs.append({"action": "docs.read", "outcome": "success",
                        "actor": {"id": "frank", "type": "user", "email": "f@example.org"},
                        "resource": {"type": "doc", "id": "d9"}})
            assert c.post("/v1/events", json=evs).status_code == 201
            wait_searchable(c, 4)
            privacy = token(server, "privacy")
            reader = token(server, "read")
        with server.client(reader) as c:
            r = c.post("/v1/erasure", json={"subject": email, "legal_basis": "Art. 17"})
            assert r.status_code == 403
            assert r.headers["content-type"].startswith("application/problem+json")
        with server.client(privacy) as c:
            before = c.get(f"/v1/subjects/{email}/events").json()
            assert before["total"] == 3
            assert before["events"][0]["record"]["actor"]["email"] == email
            r = c.post("/v1/erasure", json={"subject": email})
            assert r.status_code == 400
            assert r.json()["errors"][0]["pointer"] == "/legal_basis"
            r = c.post("/v1/erasure", json={"subject": "", "legal_basis": "x"})
            assert r.json()["errors"][0]["pointer"] == "/subject"
            r = c.post("/v1/erasure", json={"subject": email, "legal_basis": "x", "why": 1})
            assert r.json()["errors"][0]["pointer"] == "/why"
            r = c.post("/v1/erasure", json={"subject": 5, "legal_basis": "x"})
            assert r.json()["errors"][0]["pointer"] == "/subject"
            r = c.post("/v1/erasure", content=b"{not json")
            assert r.status_code == 400 and r.json()["errors"][0]["detail"] == "not JSON"
            assert c.get(f"/v1/subjects/{email}/events").json()["total"] == 3  # lost nothing
            r = c.post("/v1/erasure", json={"subject": email.upper(),
                                            "legal_basis": "GDPR Art. 17(1)(a)"})
            assert r.status_code in (200, 201), r.text
            done = r.json()
            assert (done["events"], done["values"]) == (3, 6)
            again = c.post("/v1/erasure", json={"subject": email, "legal_basis": "GDPR"})
            assert again.json()["events"] == 0
            after = c.get(f"/v1/subjects/{email}/events").json()
            assert after["total"] == 0 and after["subject"] == done["subject"]
        with server.client() as c:
            for q in (email, '"198.51.100.4"', "erin.subject"):
                assert c.get("/v1/search", params={"query": q}).json()["events"] == []
            rec = c.get("/v1/search", params={"query": "actor.id:erin", "limit": 10}).json()
            assert len(rec["events"]) == 3
            for e in rec["events"]:
                assert e["action"] == "docs.read" and set(e["actor"]["email"]) == {"$c"}
            erasure = c.get("/v1/events/" + done["record_id"]).json()["record"]
            assert erasure["action"] == "auditkeep.privacy.erasure"
            assert erasure["resource"]["id"] == done["subject"]
            frank = c.get("/v1/search", params={"query": "actor.id:frank"}).json()["events"][0]
            assert frank["actor"]["email"] == "f@example.org"
            access = wait_access(c, "auditkeep.read.subject_access")
            assert access["metadata"]["params"]["subject"] == done["subject"]
        server.stop()
        out = subprocess.run([sys.executable, "-m", "auditkeep", "verify", "--data",
                              str(server.data.root)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "default: 5 entries" in out.stdout and "3 erased by 1 erasure record" in out.stdout


def wait_access(c: httpx.Client, action: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = c.get("/v1/search", params={"tenant": "default._access",
                                            "query": f"action:{action}"}).json()["events"]
        if found:
            return dict(found[0])
        time.sleep(0.1)
    raise AssertionError(f"no {action} in the access log")
