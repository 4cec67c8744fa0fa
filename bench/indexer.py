"""The indexer's sustained throughput (both passes) on an index that already holds 0, 1M or
10M events, and ack -> searchable latency at 10,000 events/s on the largest.

    python bench/indexer.py [--sizes 0,1000000,10000000] [--events 100000] [--no-latency]

For each size N: the index `bench/search.py` builds for N events (built once, reused) is
copied, and the indexer (`Indexer.run_once`, as the server's indexer process runs it:
read bundles, parse, columns and free text, then every other field) follows a log of
`--events` new events (built once in-process, reused; times at 10,000 events/s, as
sustained ingest makes them, or over 30 days with `--sparse`, as a backfill) until it has
caught up. The copy's own events are log 1's and the new log is tenant `bench`'s (log 2),
so only the new log is indexed, into B-trees that already hold N events. Baseline, same
run: reading and `orjson.loads` of the same entries, the floor of any follower of the log.
The target is the HTTP ingest rate `bench/ingest.py` measures: an indexer slower than
ingest trails without bound.

Latency: a real server on a data directory whose search index is that copy (holding
N events), fed 10,000 events/s; each probe event is searched for by its resource id
until found. Baseline: the same search for an event already indexed.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import orjson

from auditkeep.datadir import DataDir
from auditkeep.query.index import SearchIndex
from auditkeep.query.indexer import Indexer, index_lag
from common import build_log, scratch, searchable_latency
from search import build_index

TENANT = "bench"  # not `default`: that is log 1, whose id the copied index's events use


def copy_index(n: int, into: Path) -> Path:
    """A copy of bench/search.py's index of `n` events (an empty index for 0), all of
    log 1 (`default`; the logs measured here are tenant `bench`'s)."""
    into.mkdir(parents=True, exist_ok=True)
    path = into / "search.db"
    if n:
        src, _ = build_index(n)
        t = time.perf_counter()
        shutil.copyfile(src, path)
        print(f"  copied the {n:,}-event index ({path.stat().st_size / 2**30:.2f} GiB) in "
              f"{time.perf_counter() - t:.0f} s", flush=True)
    SearchIndex(path).close()  # creates the schema when empty
    return path


def parse_floor(data: DataDir, m: int) -> float:
    store = data.open_backend()
    try:
        log = store.get_log(TENANT)
        assert log is not None
        t = time.perf_counter()
        k = 0
        for start in range(0, m, 20_000):
            for b in store.read_bundles(log.id, start, min(m, start + 20_000)):
                for e in b.entries:
                    orjson.loads(e)
                    k += 1
        return k / (time.perf_counter() - t)
    finally:
        store.close()


def sustained(data: DataDir, index_path: Path, m: int) -> tuple[float, float]:
    """Events/s of both passes until the new log is indexed, and of the first pass."""
    store = data.open_backend()
    index = SearchIndex(index_path)
    try:
        ix = Indexer(store, index)
        t = time.perf_counter()
        first = None
        while ix.run_once():
            lag = index_lag(store, index)[TENANT]
            if first is None and lag["indexed"] == lag["size"]:
                first = time.perf_counter() - t
        total = time.perf_counter() - t
        lag = index_lag(store, index)[TENANT]
        if lag["lag"] != 0:
            raise SystemExit(f"indexer stopped behind: {lag}")
        return m / total, m / (first or total)
    finally:
        index.close()
        store.close()


def latency(n: int) -> None:
    """Ack -> searchable at 10,000 events/s through a real server whose search index
    already holds the `n`-event copy."""
    from tests.conftest import start_server

    d = DataDir(scratch("indexer-latency") / "data")
    d.root.mkdir(mode=0o700)
    for suffix in ("", "-wal", "-shm"):
        Path(str(d.search_db) + suffix).unlink(missing_ok=True)
    shutil.move(copy_index(n, scratch("indexer-latency-index")), d.search_db)
    searchable_latency(start_server(d), f"index holding {n:,} events", seconds=20,
                       tenant=TENANT)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="0,1000000,10000000")
    ap.add_argument("--events", type=int, default=100_000, help="new events to index")
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--sparse", action="store_true",
                    help="event times over 30 days (a backfill), not at 10,000/s")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    m = args.events
    # Times as sustained ingest makes them (10,000 events/s, so the rollups see a few
    # busy minutes), or spread over 30 days as a backfill import would (--sparse).
    span = 30 * 86_400 if args.sparse else m / 10_000
    data = DataDir(build_log(f"indexer-log3-{m}{'-sparse' if args.sparse else ''}", m,
                             with_index=False, span_s=span, tenant=TENANT))
    floor = parse_floor(data, m)
    print(f"log of {m:,} events; baseline read + orjson.loads of its entries: "
          f"{floor:,.0f}/s", flush=True)
    for n in sizes:
        path = copy_index(n, scratch(f"indexer-{n}"))
        both, first = sustained(data, path, m)
        floor = parse_floor(data, m)
        print(f"indexer, index already holding {n:>11,}: both passes {both:>8,.0f} events/s "
              f"(columns and free text caught up at {first:,.0f}/s)   baseline read + "
              f"orjson.loads {floor:,.0f}/s (ratio {both / floor:.3f})   target: >= the HTTP "
              "ingest rate", flush=True)
        shutil.rmtree(path.parent)
    if not args.no_latency:
        latency(sizes[-1])


if __name__ == "__main__":
    main()
