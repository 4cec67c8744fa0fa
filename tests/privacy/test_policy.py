"""The redaction policy on events and raw objects: field rules, detectors, secret keys,
what is recorded, and that applying it twice changes nothing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditkeep.privacy.paths import PathError
from auditkeep.privacy.policy import RedactionPolicy, RedactRule, mask
from auditkeep.privacy.pseudonyms import is_pseudonym, pseudonym

KEY = b"k" * 32
CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@example.org"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
       "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"


def event(**over: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {"action": "orders.refund", "outcome": "success",
                          "actor": {"id": "u-1", "type": "user", "email": EMAIL},
                          "resource": {"type": "order", "id": "ORD-2024-000123"}}
    ev.update(over)
    return ev


def text(ev: dict[str, Any]) -> str:
    return orjson.dumps(ev).decode()


class TestFieldRules:
    def test_drop_mask_hash_and_commit_by_path(self) -> None:
        policy = RedactionPolicy([
            RedactRule("metadata.card", "mask", keep_end=4),
            RedactRule("metadata.customer.email", "hash"),
            RedactRule("/metadata/note", "drop"),
            RedactRule("metadata.ssn", "commit"),
        ], detectors=(), key=KEY)
        ev = policy.apply(event(metadata={
            "card": "4111111111111111", "customer": {"email": "bob@example.com"},
            "note": "call me", "ssn": "123-45-6789"}))
        meta = ev["metadata"]
        assert meta["card"] == "************1111"
        assert meta["customer"]["email"] == pseudonym(KEY, "bob@example.com")
        assert "note" not in meta
        assert meta["ssn"] == "123-45-6789"  # committed by the server's prepare, not here
        assert ev["redactions"] == [
            {"path": "/metadata/card", "rule": "mask", "action": "mask"},
            {"path": "/metadata/customer/email", "rule": "hash", "action": "hash"},
            {"path": "/metadata/note", "rule": "drop", "action": "drop"},
            {"path": "/metadata/ssn", "rule": "commit", "action": "commit"}]

    def test_wildcards_reach_every_match(self) -> None:
        policy = RedactionPolicy([RedactRule("metadata.users.*.phone", "drop"),
                                  RedactRule("metadata.**.iban", "mask")], detectors=())
        ev = policy.apply(event(metadata={
            "users": [{"phone": "1"}, {"phone": "2", "name": "x"}],
            "deep": {"a": {"iban": "DE89370400440532013000"}}}))
        assert ev["metadata"]["users"] == [{}, {"name": "x"}]
        assert ev["metadata"]["deep"]["a"]["iban"] == "******************3000"
        assert [r["path"] for r in ev["redactions"]] == [
            "/metadata/users/0/phone", "/metadata/users/1/phone", "/metadata/deep/a/iban"]

    def test_the_same_value_hashes_to_the_same_pseudonym_per_key(self) -> None:
        a = RedactionPolicy([RedactRule("metadata.e", "hash")], detectors=(), key=KEY)
        b = RedactionPolicy([RedactRule("metadata.e", "hash")], detectors=(), key=b"x" * 32)
        one = a.apply(event(metadata={"e": "bob@example.com"}))["metadata"]["e"]
        two = a.apply(event(metadata={"e": "bob@example.com"}))["metadata"]["e"]
        other = b.apply(event(metadata={"e": "bob@example.com"}))["metadata"]["e"]
        assert one == two != other
        assert is_pseudonym(one) and is_pseudonym(other)

    def test_bad_rules_are_refused(self) -> None:
        with pytest.raises(PathError):
            RedactRule("", "drop")
        with pytest.raises(PathError):
            RedactRule("*.x", "drop")
        with pytest.raises(ValueError, match="action"):
            RedactRule("metadata.x", "shred")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="pseudonym key"):
            RedactionPolicy([RedactRule("metadata.x", "hash")])

    def test_mask_hides_short_values_whole(self) -> None:
        assert mask("4111111111111111", 0, 4) == "************1111"
        assert mask("abc", 0, 4) == "***"
        assert mask("abcdefgh", 0, 4) == "****efgh"
        assert mask("abcdef", 0, 4) == "******"
        assert mask("4111111111111111", 6, 4) == "411111******1111"


class TestDetectors:
    def test_secrets_and_personal_data_inside_strings_are_replaced(self) -> None:
        policy = RedactionPolicy(key=KEY)
        ev = policy.apply(event(
            reason=f"refund for {EMAIL}",
            metadata={"url": "https://shop.example/cb?token=s3cr3tvalue&id=7",
                      "headers": {"authorization": f"Bearer {JWT}"},
                      "payment": {"card": CARD}, "nested": [{"k": AWS_KEY}]}))
        out = text({k: v for k, v in ev.items() if k != "actor"})
        for secret in ("s3cr3tvalue", JWT, CARD, AWS_KEY, "jane.doe"):
            assert secret not in out, secret
        assert ev["reason"] == "refund for [REDACTED:email]"
        assert ev["metadata"]["url"].startswith("https://shop.example/cb?token=[REDACTED:")
        assert ev["metadata"]["url"].endswith("&id=7")
        assert ev["actor"]["email"] == EMAIL  # actor fields are committed, not redacted
        assert ev["resource"]["id"] == "ORD-2024-000123"
        rules = {(r["path"], r["rule"]) for r in ev["redactions"]}
        assert ("/reason", "email") in rules
        assert ("/metadata/payment/card", "card") in rules
        assert ("/metadata/nested/0/k", "aws_access_key") in rules
        assert ("/metadata/headers/authorization", "secret_key") in rules

    def test_actions_per_detector(self) -> None:
        policy = RedactionPolicy(actions={"email": "hash", "card": "mask", "jwt": "drop"},
                                 key=KEY)
        ev = policy.apply(event(metadata={"to": f"mail {EMAIL}", "c": CARD, "t": JWT}))
        assert ev["metadata"]["to"] == f"mail {pseudonym(KEY, EMAIL)}"
        assert ev["metadata"]["c"].endswith("1111") and "4111" not in ev["metadata"]["c"]
        assert "t" not in ev["metadata"]

    def test_secret_keys_and_changes_of_secret_fields(self) -> None:
        policy = RedactionPolicy(detectors=())
        ev = policy.apply(event(
            metadata={"db_password": "hunter2", "apiKey": 12345, "token_type": "bearer",
                      "credentials": {"user": "x", "pass": "y"}},
            changes=[{"field": "password", "before": "old-pw", "after": "new-pw"},
                     {"field": "plan", "before": "free", "after": "pro"}]))
        meta = ev["metadata"]
        assert meta["db_password"] == meta["apiKey"] == meta["credentials"] \
            == "[REDACTED:secret_key]"
        assert meta["token_type"] == "bearer"
        assert ev["changes"][0] == {"field": "password", "before": "[REDACTED:secret_key]",
                                    "after": "[REDACTED:secret_key]"}
        assert ev["changes"][1]["after"] == "pro"

    def test_no_detectors_and_no_secret_keys_change_nothing(self) -> None:
        policy = RedactionPolicy(detectors=(), secret_keys=False)
        ev = event(metadata={"password": "x", "m": EMAIL})
        assert policy.apply(orjson.loads(orjson.dumps(ev))) == ev


class TestRaw:
    def test_json_raw_objects_are_redacted_value_by_value(self) -> None:
        policy = RedactionPolicy()
        raw = orjson.dumps({"user": {"username": "system:admin"},
                            "requestURI": "/api/v1/x?token=abcdef123456",
                            "requestObject": {"data": {"password": "pw-123"}},
                            "annotations": {"mail": EMAIL}})
        data, fired = policy.redact_raw(raw)
        doc = orjson.loads(data)
        assert b"abcdef123456" not in data and b"pw-123" not in data
        assert EMAIL.encode() not in data
        assert doc["user"]["username"] == "system:admin"
        paths = {r["path"] for r in fired}
        assert {"/raw/requestURI", "/raw/requestObject/data/password",
                "/raw/annotations/mail"} <= paths

    def test_drop_and_commit_redact_inside_raw_objects(self) -> None:
        policy = RedactionPolicy(actions={"email": "commit", "card": "drop"})
        data, fired = policy.redact_raw(orjson.dumps({"m": EMAIL, "c": CARD}))
        assert orjson.loads(data) == {"m": "[REDACTED:email]", "c": "[REDACTED:card]"}
        assert {r["action"] for r in fired} == {"redact"}

    def test_text_raw_and_clean_raw(self) -> None:
        policy = RedactionPolicy()
        data, fired = policy.redact_raw(f"<13>1 - host app - - - login {EMAIL}".encode())
        assert EMAIL.encode() not in data and fired[0]["path"] == "/raw"
        clean = b'{"a": "nothing here"}'
        assert policy.redact_raw(clean) == (clean, [])  # unchanged bytes, digest intact
        assert policy.redact_raw(b"\xff\xfe\x00") == (b"\xff\xfe\x00", [])


SECRETS = st.sampled_from([EMAIL, CARD, JWT, AWS_KEY, "DE89 3704 0044 0532 0130 00",
                           "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8w\n"
                           "-----END PRIVATE KEY-----", "078-05-1120"])
WORDS = st.text(alphabet=st.characters(codec="ascii", categories=("L", "Nd", "Zs")),
                max_size=20)


@st.composite
def secret_events(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    planted: list[str] = []

    def leaf() -> str:
        s = draw(SECRETS)
        planted.append(s)
        return f"{draw(WORDS)} {s} {draw(WORDS)}"

    meta: dict[str, Any] = {}
    for i in range(draw(st.integers(1, 4))):
        shape = draw(st.integers(0, 2))
        meta[f"f{i}"] = leaf() if shape == 0 else [leaf()] if shape == 1 else {"x": leaf()}
    ev = event(metadata=meta, reason=leaf())
    return ev, planted


class TestProperties:
    @settings(max_examples=150, deadline=None)
    @given(secret_events())
    def test_redaction_leaves_no_planted_secret_and_is_idempotent(
            self, case: tuple[dict[str, Any], list[str]]) -> None:
        ev, planted = case
        policy = RedactionPolicy(key=KEY)
        once = policy.apply(ev)
        out = text({k: v for k, v in once.items() if k != "actor"})
        for s in planted:
            assert s not in out
        again = policy.apply(orjson.loads(orjson.dumps(once)))
        assert again == once

    @settings(max_examples=100, deadline=None)
    @given(st.dictionaries(st.text(min_size=1, max_size=8), WORDS, max_size=5))
    def test_hashing_twice_is_hashing_once(self, meta: dict[str, str]) -> None:
        policy = RedactionPolicy([RedactRule("metadata.*", "hash")], detectors=(), key=KEY)
        once = policy.apply(event(metadata=dict(meta)))
        assert policy.apply(orjson.loads(orjson.dumps(once))) == once
