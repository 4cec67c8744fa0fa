"""Rows both SQL backends write and read the same way: packed bundles, personal values
and raw objects of a commit, digests, the token, alert and delivery records, and the
retention rows (holds, cosignatures, archives; bundles rewritten by purge and restore)."""

from __future__ import annotations

import struct
from typing import Any

from auditkeep.storage.base import (
    BUNDLE_WIDTH,
    AlertRecord,
    ArchiveRecord,
    Commit,
    Cosignature,
    DeliveryRecord,
    HoldRecord,
    TokenRecord,
)
from auditkeep.storage.codec import (
    pack_blob,
    pack_entries,
    pack_json,
    unpack_entries,
    unpack_json,
)

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


HOLD_COLS = ("tenant, id, query, reason, created_by, created, since, until, released, "
             "released_by, record_seq, release_seq")
COSIGNATURE_COLS = "log_id, size, root, witness, line, created"
ARCHIVE_COLS = "log_id, first_seq, end_seq, url, manifest_url, sha256, checkpoint_size, created"


def hold_row(h: HoldRecord) -> tuple[Any, ...]:
    return (h.tenant, h.id, h.query, h.reason, h.created_by, h.created, h.since, h.until,
            h.released, h.released_by, h.record_seq, h.release_seq)


def hold_record(row: tuple[Any, ...]) -> HoldRecord:
    return HoldRecord(id=str(row[1]), tenant=str(row[0]), query=str(row[2]),
                      reason=str(row[3]), created_by=str(row[4]), created=str(row[5]),
                      since=row[6], until=row[7], released=row[8], released_by=row[9],
                      record_seq=None if row[10] is None else int(row[10]),
                      release_seq=None if row[11] is None else int(row[11]))


def cosignature_row(c: Cosignature) -> tuple[Any, ...]:
    return (c.log_id, c.size, bytes(c.root), c.witness, c.line, c.created)


def cosignature_record(row: tuple[Any, ...]) -> Cosignature:
    return Cosignature(int(row[0]), int(row[1]), bytes(row[2]), str(row[3]), str(row[4]),
                       str(row[5]))


def archive_row(a: ArchiveRecord) -> tuple[Any, ...]:
    return (a.log_id, a.first, a.end, a.url, a.manifest_url, a.sha256, a.checkpoint_size,
            a.created)


def archive_record(row: tuple[Any, ...]) -> ArchiveRecord:
    return ArchiveRecord(int(row[0]), int(row[1]), int(row[2]), str(row[3]), str(row[4]),
                         str(row[5]), int(row[6]), str(row[7]))


def purge_bundle(blob: bytes, first: int, count: int, entries: dict[int, bytes],
                 where: str) -> bytes:
    """A packed bundle with the entries at these seqs replaced (b"" purges, bytes
    restore); seqs outside the bundle are ignored."""
    old = unpack_entries(blob, count, where)
    return pack_entries([entries.get(s, e) for s, e in enumerate(old, first)])


def drop_personal(blob: bytes, seqs: set[int]) -> tuple[bytes | None, bool]:
    """A packed personal row without these seqs' values: (new blob or None when nothing
    is left, whether anything changed)."""
    data = unpack_json(blob)
    if not isinstance(data, dict):
        return blob, False
    left = {k: v for k, v in data.items() if int(k) not in seqs}
    if len(left) == len(data):
        return blob, False
    return (pack_json(left) if left else None), True
