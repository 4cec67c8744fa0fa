"""Stored records made the way the server makes them: a source's mapping (or a schema v1
dict), then `decode_events` and `prepare`, then the entry bytes read back. Personal
values are revealed as for a reader with the `personal` scope, or left as commitments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from auditkeep.log.service import reveal
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.validate import decode_events
from auditkeep.sources import cloudtrail, k8s

DATA = Path(__file__).parent.parent / "data"


def store(events: list[dict[str, Any]], *, personal: bool = True, first_seq: int = 0,
          raws: list[tuple[str, bytes] | None] | None = None, tenant: str = "acme"
          ) -> list[dict[str, Any]]:
    """The records `GET /v1/events` would return for `events` appended from `first_seq`."""
    decoded = decode_events(orjson.dumps(events), ndjson=False)
    pendings = prepare(decoded, tenant=tenant, submitter="importer", may_set_tenant=True,
                       raws=raws)
    out = []
    for seq, pending in enumerate(pendings, start=first_seq):
        record = orjson.loads(pending.entry(seq))
        if personal:
            reveal(record, pending.personal)
        out.append(record)
    return out


def stored_event(**fields: Any) -> dict[str, Any]:
    """One stored record of a small `orders.delete` by alice, with `fields` over it."""
    base: dict[str, Any] = {"action": "orders.delete", "actor": {"id": "alice", "type": "user"},
                            "outcome": "success"}
    return store([{**base, **fields}])[0]


def k8s_secret_create(*, personal: bool = True) -> dict[str, Any]:
    """The Falco sample's first item: `admin` creates a bootstrap token secret."""
    body = json.loads((DATA / "k8s" / "eventlist_v1_from_falco.json").read_text())
    item = body["items"][0]
    event = k8s.map_event(item)
    assert event is not None
    raw = orjson.dumps(item)
    return store([event], personal=personal, first_seq=41,
                 raws=[("k8s.audit", raw)])[0]


def cloudtrail_record(index: int, *, personal: bool = True) -> dict[str, Any]:
    """Record `index` of the Stratus Red Team CloudTrail sample, stored."""
    records = json.loads((DATA / "cloudtrail" / "stratus_records.json").read_text())["Records"]
    obj = records[index]
    return store([cloudtrail.map_record(obj)], personal=personal, first_seq=7,
                 raws=[(cloudtrail.FORMAT, orjson.dumps(obj))])[0]


#: Indexes in the Stratus sample.
GET_PASSWORD_DATA = 0     # AssumedRole session, denied, data_access
CONSOLE_LOGIN = 284       # IAM user console sign-in, auth
CREATE_USER = 296         # iam CreateUser, admin
ATTACH_USER_POLICY = 294  # iam AttachUserPolicy, policy
