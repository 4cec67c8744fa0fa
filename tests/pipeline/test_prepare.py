"""Prepared events become RFC 8785 entries whatever their free-form content holds."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from auditkeep.log.canonical import reference_canonical_bytes
from auditkeep.pipeline.prepare import dedup_key, encode, prepare, uuid7_strings
from auditkeep.pipeline.validate import decode_events

keys = st.text(min_size=1, max_size=8)  # includes astral characters, where key order differs
scalars = (st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10))
metadata = st.dictionaries(keys, st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner,
                                                                         max_size=3),
    max_leaves=8), max_size=6)


def build(md: dict[str, Any]) -> dict[str, Any]:
    body = orjson.dumps({"action": "a.b", "actor": {"id": "é☃𝄞", "type": "user",
                                                    "email": "x@y.z"},
                         "outcome": "success", "metadata": md})
    (p,) = prepare(decode_events(body, ndjson=False), tenant="t", submitter="tok_x",
                   may_set_tenant=False)
    p.fields["seq"] = 7
    return {"entry": encode(p.fields, p.plain), "p": p}


class TestCanonicalEntries:
    @settings(max_examples=300, deadline=None)
    @given(metadata)
    def test_entry_bytes_are_rfc8785_of_the_record(self, md: dict[str, Any]) -> None:
        out = build(md)
        entry = out["entry"]
        # Numbers are IEEE doubles in RFC 8785: parse them back as such (2.0**53 prints as
        # 9007199254740992, which as a Python int would be refused as unsafe).
        assert entry == reference_canonical_bytes(json.loads(entry, parse_int=float))

    def test_personal_values_are_commitments_in_the_entry(self) -> None:
        out = build({})
        rec = orjson.loads(out["entry"])
        assert set(rec["actor"]["email"]) == {"$c"}
        salt, value = out["p"].personal["actor.email"]
        assert value == "x@y.z"
        import hashlib

        digest = hashlib.sha256(bytes.fromhex(salt) + orjson.dumps(value)).hexdigest()
        assert rec["actor"]["email"]["$c"] == digest


class TestIds:
    def test_uuid7_dedup_keys_grow_with_time(self) -> None:
        import time

        a = uuid7_strings(1)[0]
        time.sleep(0.002)
        b = uuid7_strings(1)[0]
        assert dedup_key(a, assigned=True) < dedup_key(b, assigned=True)
        assert dedup_key(a) == dedup_key(a, assigned=True)

    def test_other_ids_hash_to_stable_keys(self) -> None:
        assert dedup_key("order-1") == dedup_key("order-1")
        assert dedup_key("order-1") != dedup_key("order-2")

    def test_dedup_keys_fit_a_signed_64_bit_integer(self) -> None:
        far = "ffffffff-ffff-7fff-bfff-ffffffffffff"  # a UUIDv7 from the year 10889
        assert -(2**63) <= dedup_key(far) < 0
