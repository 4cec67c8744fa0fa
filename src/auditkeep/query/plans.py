"""How a search runs on the index: which SQL answers a query's newest (or oldest) matches.

Three plans, chosen from the query's shape:
- **plain**: one statement, `WHERE <compiled query> ORDER BY time_us DESC LIMIT n`.
- **per value** (an OR of equalities on indexed columns, or a prefix of `action`, whose
  values the rollups list; alone or in an AND): one statement per value, each walking
  its own index newest first and stopping at `n`, merged by `UNION`. SQLite cannot merge
  two index walks by time itself: with `actor IN (a, b)` it gathers every event of both
  actors and sorts them (1.4 s at 10M for two busy actors; per value: a few ms).
- **free text first** (free text without a selective indexed equality beside it):
  FTS5 hands back matches in rowid order, which follows the log, so the search reads
  them newest first a rowid range at a time and stops once the rows below the range
  cannot be newer than the `n`th match found: `blocks` keeps, per 1,024 rows, the
  newest event time at or below them. Event times are the producers' and may be out of
  order; the bound keeps the answer exact, it only reads further when they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auditkeep.query import fields
from auditkeep.query.ast import And, Eq, Literal_, Node, Or, Text, Wildcard
from auditkeep.query.sql import compile_where, next_prefix
from auditkeep.query.text import fts_expression, tokens

if TYPE_CHECKING:
    from auditkeep.query.index import SearchIndex, Window

#: Rows per `blocks` entry.
BLOCK_BITS = 10
#: Columns with an index that leads with them (after log_id): an equality on one of
#: these finds its rows without walking time.
INDEXED = frozenset({"actor", "action", "rid", "trace_id", "request_id", "id", "seq"})
#: The first rowid range the free-text plan reads, in rows per result wanted; it grows
#: fourfold each round.
_FIRST_SPAN = 64
_MIN_SPAN = 4096
_MAX_ARMS = 16


def search(index: SearchIndex, log_id: int, node: Node, window: Window, *, limit: int,
           oldest_first: bool = False) -> list[tuple[int, int]]:
    if not oldest_first:
        text = _text_driver(node)
        if text is not None:
            return _text_first(index, log_id, text[0], text[1], window, limit)
    arms = _value_arms(node)
    if arms is None:
        arms = _prefix_arms(index, log_id, node)
    if arms is not None:
        return _per_value(index, log_id, arms, window, limit, oldest_first) if arms else []
    return _plain(index, log_id, node, window, limit, oldest_first)


def _plain(index: SearchIndex, log_id: int, node: Node, window: Window, limit: int,
           oldest_first: bool) -> list[tuple[int, int]]:
    where = compile_where(node)
    win = window.conditions()
    order = "ASC" if oldest_first else "DESC"
    sql = ("SELECT time_us, seq FROM events WHERE log_id = ? AND " + win.sql  # noqa: S608 -- compiled from fixed fragments; values are bound
           + " AND " + where.sql + f" ORDER BY time_us {order}, rowid {order} LIMIT ?")
    rows = index.execute(sql, [log_id, *win.args, *where.args, limit])
    return [(int(t), int(s)) for t, s in rows]


def _indexed_eq(n: Node) -> bool:
    col = fields.COLUMNS.get(n.field) if isinstance(n, Eq) else None
    return col is not None and col.name in INDEXED


def _value_arms(node: Node) -> list[Node] | None:
    """The arms of an OR of indexed equalities, each ANDed with the rest of the query."""
    rest: tuple[Node, ...] = ()
    if isinstance(node, Or):
        items = node.items
    elif isinstance(node, And):
        ors = [i for i in node.items if isinstance(i, Or)]
        if len(ors) != 1:
            return None
        items, rest = ors[0].items, tuple(i for i in node.items if i is not ors[0])
    else:
        return None
    if not 2 <= len(items) <= _MAX_ARMS or not all(_indexed_eq(i) for i in items):
        return None
    return [And((i, *rest)) if rest else i for i in items]


def _prefix_arms(index: SearchIndex, log_id: int, node: Node) -> list[Node] | None:
    """`action:ns.*` (alone or in an AND) as one arm per action the log has under the
    prefix, found in the per-minute rollups a seek per value. Walking the time index
    for a prefix that one event in a thousand matches read 100k rows at 10M."""
    items = node.items if isinstance(node, And) else (node,)
    found = [i for i in items if isinstance(i, Wildcard) and i.field == "action"
             and i.prefix() is not None]
    if not found:
        return None
    wild = found[0]
    prefix = wild.prefix()
    if prefix is None:
        return None
    upper: str | bytes = next_prefix(prefix) or b""  # a blob sorts after every text
    values: list[str] = []
    last = None
    while len(values) <= _MAX_ARMS:
        row = index.execute(
            "SELECT value FROM counts WHERE log_id = ? AND dim = 'action' AND value >= ? "
            "AND (? IS NULL OR value > ?) AND value < ? ORDER BY value LIMIT 1",
            [log_id, prefix, last, last, upper])
        if not row:
            break
        last = row[0][0]
        values.append(last)
    if len(values) > _MAX_ARMS:
        return None
    rest = tuple(i for i in items if i is not wild)
    return [And((Eq("action", Literal_(v)), *rest)) if rest else Eq("action", Literal_(v))
            for v in values]


def _per_value(index: SearchIndex, log_id: int, arms: list[Node], window: Window, limit: int,
               oldest_first: bool) -> list[tuple[int, int]]:
    order = "ASC" if oldest_first else "DESC"
    win = window.conditions()
    parts: list[str] = []
    args: list[Any] = []
    for arm in arms:
        where = compile_where(arm)
        # (time, rowid) only: an arm with nothing but its equality reads its index alone,
        # and only the page's rows are looked up for their seq.
        parts.append("SELECT * FROM (SELECT time_us AS t, rowid AS r FROM events "  # noqa: S608 -- fixed fragments
                     f"WHERE log_id = ? AND {win.sql} AND {where.sql} "
                     f"ORDER BY time_us {order}, rowid {order} LIMIT ?)")
        args += [log_id, *win.args, *where.args, limit]
    # UNION, not UNION ALL: an event may match two arms (a multi-valued field).
    sql = ("SELECT m.t, e.seq FROM (" + " UNION ".join(parts)  # noqa: S608
           + f" ORDER BY 1 {order}, 2 {order} LIMIT ?) AS m CROSS JOIN events AS e "
           f"ON e.rowid = m.r ORDER BY m.t {order}, m.r {order}")
    rows = index.execute(sql, [*args, limit])
    return [(int(t), int(s)) for t, s in rows]


def _text_driver(node: Node) -> tuple[Text, Node] | None:
    """(the free text to read first, the rest of the query) when reading free-text
    matches newest first is the better plan."""
    if isinstance(node, Text):
        return node, And(())
    if not isinstance(node, And):
        return None
    texts = [i for i in node.items if isinstance(i, Text)]
    if not texts or any(_indexed_eq(i) for i in node.items):
        return None
    return texts[0], And(tuple(i for i in node.items if i is not texts[0]))


def _text_first(index: SearchIndex, log_id: int, text: Text, rest: Node, window: Window,
                limit: int) -> list[tuple[int, int]]:
    where = compile_where(rest, rowid="e.rowid") if not (
        isinstance(rest, And) and not rest.items) else None
    win = window.conditions("e.")
    sql = ("SELECT e.time_us, e.rowid, e.seq FROM events_fts AS f CROSS JOIN events AS e "  # noqa: S608 -- fixed fragments
           "ON e.rowid = f.rowid WHERE events_fts MATCH ? AND f.rowid >= ? AND f.rowid < ? "
           f"AND e.log_id = ? AND {win.sql}" + (f" AND {where.sql}" if where else ""))
    match = fts_expression(tokens(text.text), text.prefix)
    top = index.execute("SELECT max(rowid) FROM events", [])[0][0]
    if top is None:
        return []
    ceiling = _ceiling(window)
    found: list[tuple[int, int, int]] = []
    hi, span = top + 1, max(_MIN_SPAN, limit * _FIRST_SPAN)
    while hi > 1:
        lo = max(1, hi - span)
        found += index.execute(sql, [match, lo, hi, log_id, *win.args,
                                     *(where.args if where else [])])
        found.sort(reverse=True)
        del found[limit:]
        hi, span = lo, span * 4
        if hi <= 1:
            break
        bound = _newest_below(index, hi)
        if bound is None or (window.since_us is not None and bound < window.since_us):
            break
        if len(found) >= limit and found[-1][0] >= min(bound, ceiling):
            break  # nothing below `hi` can sort before the last match kept
    return [(int(t), int(s)) for t, _, s in found]


def _ceiling(window: Window) -> float:
    """The newest time a match may have."""
    out = float("inf")
    if window.until_us is not None:
        out = window.until_us - 1
    if window.cursor is not None:
        out = min(out, window.cursor[0])
    return out


def _newest_below(index: SearchIndex, rowid: int) -> int | None:
    """The newest event time of any row with a rowid below `rowid` (an upper bound)."""
    rows = index.execute("SELECT prefix_max FROM blocks WHERE block <= ? ORDER BY block DESC "
                         "LIMIT 1", [(rowid - 1) >> BLOCK_BITS])
    return int(rows[0][0]) if rows else None
