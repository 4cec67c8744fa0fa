"""Rows both SQL backends write and read the same way: packed bundles, personal values
and raw objects of a commit, digests, and the token, alert and delivery records."""

from __future__ import annotations

import struct
from typing import Any

from auditkeep.storage.base import (
    BUNDLE_WIDTH,
    AlertRecord,
    Commit,
    DeliveryRecord,
    TokenRecord,
)
from auditkeep.storage.codec import pack_blob, pack_entries, pack_json

Rows = tuple[list[tuple[int, int, int, bytes, bytes]], list[tuple[int, int, bytes]],
              list[tuple[int, int, str, bytes]]]


def pack_rows(commit: Commit) -> Rows:
    """Rows of the bundles, personal values and raw objects of a commit, compressed
    the same in every backend (codec.py)."""
    log_id, entries, digests, personal = (commit.log_id, commit.entries, commit.digests,
                                          commit.personal)
    bundle_rows = []
    personal_rows = []
    for off in range(0, len(entries), BUNDLE_WIDTH):
        chunk = entries[off : off + BUNDLE_WIDTH]
        first = commit.first_seq + off
        bundle_rows.append((log_id, first, len(chunk), pack_entries(chunk),
                            b"".join(digests[off : off + BUNDLE_WIDTH])))
        pers = {s: personal[s] for s in range(first, first + len(chunk))
                if s in personal} if personal else None
        if pers:
            personal_rows.append((log_id, first, pack_json(pers)))
    raw_rows = [(log_id, seq, fmt, pack_blob(data)) for seq, (fmt, data) in commit.raws.items()]
    return bundle_rows, personal_rows, raw_rows


def split_digests(digests: bytes, count: int) -> list[bytes]:
    # one struct.unpack: measured several times faster than slicing
    if len(digests) == 32 * count:
        return list(struct.unpack("32s" * count, digests))
    return [digests[i * 32 : i * 32 + 32] for i in range(count)]


def token_record(row: tuple[Any, ...]) -> TokenRecord:
    return TokenRecord(row[0], row[1], tuple(row[2].split()), row[3], row[4], row[5])


ALERT_COLS = "id, tenant, rule, level, status, dedup_key, created, updated, body, logged_seq"
DELIVERY_COLS = ("id, alert_id, tenant, sink, status, attempts, next_attempt, created, "
                  "updated, last_error")


def alert_row(a: AlertRecord) -> tuple[Any, ...]:
    return (a.id, a.tenant, a.rule, a.level, a.status, a.dedup_key, a.created, a.updated,
            a.body, a.logged_seq)


def alert_record(row: tuple[Any, ...]) -> AlertRecord:
    return AlertRecord(str(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]),
                       str(row[5]), str(row[6]), str(row[7]), str(row[8]),
                       None if row[9] is None else int(row[9]))


def delivery_row(d: DeliveryRecord) -> tuple[Any, ...]:
    return (d.id, d.alert_id, d.tenant, d.sink, d.status, d.attempts, d.next_attempt,
            d.created, d.updated, d.last_error)


def delivery_record(row: tuple[Any, ...]) -> DeliveryRecord:
    return DeliveryRecord(str(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]),
                          int(row[5]), str(row[6]), str(row[7]), str(row[8]),
                          None if row[9] is None else str(row[9]))


def alerts_where(tenant: str, rule: str | None, level: str | None, status: str | None,
                 since: str | None, until: str | None, before: tuple[str, str] | None,
                 ph: str) -> tuple[str, list[Any]]:
    """The WHERE of an alert list (`Backend.alerts`), `ph` the driver's placeholder."""
    where, args = _equal(tenant, (("rule", rule), ("level", level), ("status", status)), ph)
    if since is not None:
        where.append(f"created >= {ph}")
        args.append(since)
    if until is not None:
        where.append(f"created < {ph}")
        args.append(until)
    if before is not None:
        where.append(f"(created, id) < ({ph}, {ph})")
        args.extend(before)
    return " AND ".join(where), args


def deliveries_where(tenant: str, status: str | None, alert_id: str | None, ph: str
                     ) -> tuple[str, list[Any]]:
    """The WHERE of a delivery list (`Backend.deliveries`)."""
    where, args = _equal(tenant, (("status", status), ("alert_id", alert_id)), ph)
    return " AND ".join(where), args


def _equal(tenant: str, pairs: tuple[tuple[str, str | None], ...], ph: str
           ) -> tuple[list[str], list[Any]]:
    where = [f"tenant = {ph}"]
    args: list[Any] = [tenant]
    for col, val in pairs:
        if val is not None:
            where.append(f"{col} = {ph}")
            args.append(val)
    return where, args
