"""Search latency over 1M events: p50/p95 of several query shapes, the way the API runs
them (index query + fetching the records), without HTTP and the access-log write.

    python bench/search.py [--events 1000000]

Baseline from the same run: fetching the same number of records by known seq (what
any answer costs once the index has said which).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from auditkeep.datadir import DataDir
from auditkeep.log.keys import KeyRing
from auditkeep.log.service import LogService
from auditkeep.query.index import Filters, SearchIndex
from auditkeep.storage.base import Backend, LogInfo
from common import ACTIONS, CATEGORIES, SERVICES, build_log, percentiles, scratch

DAY_US = 86_400 * 1_000_000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--limit", type=int, default=100)
    args = ap.parse_args()
    n = args.events
    d = DataDir(build_log(f"search-{n}", n, with_index=True))
    store = d.open_backend()
    logs = LogService(store, KeyRing(store, d.keys))
    index = SearchIndex(d.search_db)
    info = store.get_log("default")
    assert info is not None
    rng = random.Random(5)
    now = int(time.time() * 1e6)

    def run(f: Filters) -> int:
        hits = index.search(info.id, f, limit=args.limit, cursor=None)
        return len(logs.records("default", [s for _, s in hits], personal=False))

    shapes: dict[str, Callable[[], Filters]] = {
        "actor + last 24h": lambda: Filters(actor=f"user-{rng.randrange(5000)}",
                                            since_us=now - DAY_US),
        "actor + 7 days": lambda: Filters(actor=f"user-{rng.randrange(5000)}",
                                          since_us=now - 7 * DAY_US),
        "action exact + last 24h": lambda: Filters(action=rng.choice(ACTIONS),
                                                   since_us=now - DAY_US),
        "action prefix + outcome": lambda: Filters(action=rng.choice(ACTIONS).split(".")[0]
                                                   + ".*", outcome="failure"),
        "resource type + id": lambda: Filters(resource_type="order",
                                              resource_id=str(rng.randrange(1_000_000))),
        "category + service + 7 days": lambda: Filters(category=rng.choice(CATEGORIES),
                                                       source_service=rng.choice(SERVICES),
                                                       since_us=now - 7 * DAY_US),
        "time window (1 hour) only": lambda: Filters(
            since_us=(t := now - rng.randrange(1, 29) * DAY_US), until_us=t + 3_600_000_000),
        "full text (q=batch N)": lambda: Filters(q=f"batch {rng.randrange(1000)}"),
        "newest first, no filter": lambda: Filters(),
    }
    seqs = [rng.randrange(n) for _ in range(args.limit)]
    for _ in range(20):
        logs.records("default", seqs, personal=False)
    base: list[float] = []
    for _ in range(args.samples):
        batch = [rng.randrange(n) for _ in range(args.limit)]
        t = time.perf_counter()
        logs.records("default", batch, personal=False)
        base.append(time.perf_counter() - t)
    b50, b95, _ = percentiles(base)
    print(f"{n:,} events, limit {args.limit}; baseline: fetch {args.limit} records by seq "
          f"p50 {b50 * 1e3:.2f} ms p95 {b95 * 1e3:.2f} ms")
    for name, make in shapes.items():
        for _ in range(5):
            run(make())
        xs: list[float] = []
        found: list[Any] = []
        for _ in range(args.samples):
            f = make()
            t = time.perf_counter()
            found.append(run(f))
            xs.append(time.perf_counter() - t)
        p50, p95, _ = percentiles(xs)
        print(f"  {name:<30} p50 {p50 * 1e3:7.2f} ms  p95 {p95 * 1e3:7.2f} ms  "
              f"(p95 / baseline p95 {p95 / b95:.1f}; mean hits {sum(found) / len(found):.0f})")
    print("target: field+time search p95 <= 50 ms")
    indexer_throughput(store, info.id, min(n, 200_000))
    store.close()


def indexer_throughput(store: Backend, log_id: int, k: int) -> None:
    """Index `k` entries into a fresh index, against the floor of reading and parsing
    them (what any follower of the log must do)."""
    import orjson

    from auditkeep.query.indexer import Indexer

    t = time.perf_counter()
    count = sum(len([orjson.loads(e) for e in b.entries])
                for b in store.read_bundles(log_id, 0, k))
    floor = count / (time.perf_counter() - t)
    path = scratch("reindex") / "search.db"
    index = SearchIndex(path)
    limited = _Prefix(store, k)
    indexer = Indexer(limited, index)  # type: ignore[arg-type]
    t = time.perf_counter()
    while indexer.run_once():
        pass
    rate = indexer.indexed / (time.perf_counter() - t)
    index.close()
    print(f"indexer: {rate:,.0f} entries/s over {indexer.indexed:,}   baseline read + parse "
          f"the same entries: {floor:,.0f}/s (ratio {rate / floor:.2f}); must keep up with "
          "ingest")


class _Prefix:
    """The store, but showing only the first `k` entries of each log."""

    def __init__(self, store: Backend, k: int) -> None:
        self._store, self._k = store, k

    def list_logs(self) -> list[LogInfo]:
        return [LogInfo(i.id, i.name, i.origin, min(i.size, self._k), i.root)
                for i in self._store.list_logs()]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


if __name__ == "__main__":
    main()
