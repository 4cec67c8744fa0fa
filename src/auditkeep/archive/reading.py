"""Reading sealed ranges back: for rehydration (entries into hot storage again) and for
`GET /v1/search?include=archive` (purged events found in the archive).

Both trust nothing in the archive they cannot check against the hot store: the
manifest's signature by one of the node's keys, the file's SHA-256, and, before any
entry goes back into the log, its leaf hash against the stored level-0 tile.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from auditkeep.archive.manifest import Manifest, archive_verifiers, open_manifest
from auditkeep.archive.objects import Objects
from auditkeep.archive.seal import check_leaves, stored_leaves
from auditkeep.archive.table import parquet_file, read_columns
from auditkeep.errors import CorruptionError, NoteError, NotFoundError
from auditkeep.log import merkle
from auditkeep.log.service import LogService
from auditkeep.query.ast import Node
from auditkeep.query.fields import time_us
from auditkeep.query.index import SearchIndex, Window
from auditkeep.query.indexer import reindex
from auditkeep.query.predicate import Doc, compile_predicate
from auditkeep.storage.base import ArchiveRecord, LogInfo

if TYPE_CHECKING:
    from auditkeep.query.pgindex import PgSearchIndex


def object_name(objects: Objects, url: str) -> str:
    """The name under the archive of one of its objects' URLs (as put_archive keeps it)."""
    prefix = objects.url + "/"
    if not url.startswith(prefix):
        raise NotFoundError(f"{url} is not in the configured archive {objects.url}")
    return url[len(prefix):]


def checked_file(logs: LogService, objects: Objects, info: LogInfo,
                 record: ArchiveRecord) -> tuple[Manifest, bytes]:
    """The range's manifest (signed by one of this node's keys) and its Parquet bytes
    (whose SHA-256 the manifest and the archive row both name)."""
    note = objects.get(object_name(objects, record.manifest_url))
    vkeys = [k.verifier(info.origin).to_string() for k in logs.keys.published()]
    try:
        m, _ = open_manifest(note, archive_verifiers(vkeys))
    except NoteError as exc:
        raise CorruptionError(f"{record.manifest_url}: {exc}") from None
    if (m.log, m.first, m.end) != (info.name, record.first, record.end):
        raise CorruptionError(f"{record.manifest_url} is not the manifest of {info.name} "
                              f"[{record.first}, {record.end})")
    data = objects.get(object_name(objects, record.url))
    digest = hashlib.sha256(data).hexdigest()
    if digest != m.sha256 or digest != record.sha256:
        raise CorruptionError(f"{record.url}: its SHA-256 is not the manifest's")
    return m, data


@dataclass(frozen=True, slots=True)
class Rehydration:
    log: str
    first: int
    end: int
    ranges: int  # archived ranges read
    checked: int  # entries whose leaf hash matched the stored tile
    restored: int  # purged entries put back
    indexed: int  # of those, indexed again for search

    def to_json(self) -> dict[str, Any]:
        return {"log": self.log, "from": self.first, "to": self.end, "ranges": self.ranges,
                "checked": self.checked, "restored": self.restored, "indexed": self.indexed}


def rehydrate(logs: LogService, objects: Objects, log_name: str, first: int, end: int,
              index: SearchIndex | PgSearchIndex | None = None) -> Rehydration:
    """Put the archived entries of seqs [first, end) back where they were purged, and
    into `index` again (it forgot them at the purge). Every entry is checked against
    the stored leaf first; one mismatch and nothing is restored."""
    info = logs.info(log_name)
    records = [r for r in logs.store.archives(info.id) if r.first < end and r.end > first]
    entries: dict[int, bytes] = {}
    checked = 0
    for record in records:
        _, data = checked_file(logs, objects, info, record)
        lo, hi = max(first, record.first), min(end, record.end)
        table = read_columns(data, ("seq", "entry"))
        seqs = table.column("seq").to_pylist()
        if seqs != list(range(record.first, record.end)):
            raise CorruptionError(f"{record.url}: its rows are not seqs "
                                  f"[{record.first}, {record.end})")
        wanted = table.column("entry").to_pylist()[lo - record.first:hi - record.first]
        check_leaves(info.name, lo, merkle.leaf_hashes(wanted),
                     stored_leaves(logs.store, info.id, lo, hi))
        checked += len(wanted)
        entries.update(zip(range(lo, hi), wanted, strict=True))
    purged = logs.store.purged_ranges(info.id, first, end)
    todo = {s: e for s, e in entries.items() if any(p.first <= s < p.end for p in purged)}
    restored = logs.store.restore(info.id, todo) if todo else 0
    logs.forget_bundles(info.id)  # the read cache may hold the purged (empty) bundles
    indexed = reindex(logs.store, index, info.id, list(todo)) if index is not None else 0
    return Rehydration(info.name, first, end, len(records), checked, restored, indexed)


def search_archive(logs: LogService, objects: Objects, log_name: str, node: Node,
                   window: Window, limit: int) -> list[tuple[int, int, dict[str, Any]]]:
    """(time_us, seq, record) of purged events in archived ranges that match, newest
    first, at most `limit`. Only the footer and the row groups whose time statistics
    overlap the window are fetched (byte ranges), and only the seq, time and entry
    columns decoded. Each entry returned is first checked against the stored leaf, which
    ties it to the tree more tightly than the file's digest would."""
    info = logs.info(log_name)
    purged = logs.store.purged_ranges(info.id)
    if not purged:
        return []
    predicate = compile_predicate(node)
    out: list[tuple[int, int, dict[str, Any]]] = []
    for record in logs.store.archives(info.id):
        gone = [p for p in purged if p.first < record.end and p.end > record.first]
        if not gone:
            continue
        name = object_name(objects, record.url)
        with objects.reader(name, None) as f:
            found = [(seq, entry, rec) for seq, entry in _rows(parquet_file(f), window, gone)
                     if predicate(Doc.of(rec := orjson.loads(entry)))]
        if not found:
            continue
        stored = stored_leaves(logs.store, info.id, record.first, record.end)
        for (seq, _, rec), leaf in zip(found, merkle.leaf_hashes(e for _, e, _ in found),
                                           strict=True):
            if not 0 <= seq - record.first < len(stored) or stored[seq - record.first] != leaf:
                raise CorruptionError(f"{record.url}: seq {seq}: the archived entry's leaf "
                                      "hash is not the stored level-0 tile's")
            out.append((time_us(rec["time"]), seq, rec))
    out.sort(key=lambda x: (x[0], x[1]), reverse=True)
    return out[:limit]


def _rows(pf: Any, window: Window, gone: Sequence[Any]) -> list[tuple[int, bytes]]:
    """(seq, entry) of the rows in the window and in one of the purged runs."""
    groups = [i for i in range(pf.metadata.num_row_groups) if _overlaps(pf, i, window)]
    if not groups:
        return []
    try:
        table = pf.read_row_groups(groups, columns=["seq", "time", "entry"])
    except (pa.ArrowException, OSError) as exc:
        raise CorruptionError(f"reading an archived Parquet file: {exc}") from None
    t = table.column("time").cast(pa.int64())
    mask = pc.is_valid(t)
    if window.since_us is not None:
        mask = pc.and_(mask, pc.greater_equal(t, window.since_us))
    if window.until_us is not None:
        mask = pc.and_(mask, pc.less(t, window.until_us))
    table = table.filter(mask)
    out = []
    for seq, when, entry in zip(table.column("seq").to_pylist(),
                                table.column("time").cast(pa.int64()).to_pylist(),
                                table.column("entry").to_pylist(), strict=True):
        if not any(p.first <= seq < p.end for p in gone):
            continue
        if window.cursor is not None and (when, seq) >= window.cursor:
            continue
        if window.after is not None and (when, seq) <= window.after:
            continue
        out.append((seq, entry))
    return out


def _overlaps(pf: Any, group: int, window: Window) -> bool:
    """Whether row group `group` may hold a row in the window (by its time statistics)."""
    meta = pf.metadata.row_group(group)
    col = meta.column(pf.schema_arrow.get_field_index("time"))
    stats = col.statistics
    if stats is None or not stats.has_min_max:
        return True
    lo, hi = _us(stats.min), _us(stats.max)
    top = window.until_us
    if window.cursor is not None:
        top = window.cursor[0] + 1 if top is None else min(top, window.cursor[0] + 1)
    if top is not None and lo >= top:
        return False
    bottom = window.since_us
    if window.after is not None:
        bottom = window.after[0] if bottom is None else max(bottom, window.after[0])
    return not (bottom is not None and hi < bottom)


def _us(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int(pa.scalar(value, pa.timestamp("us", tz="UTC")).cast(pa.int64()).as_py())
