"""Soak: a steady mix of ingest, search and proof requests against one real server for
a long time, asserting that its memory stays bounded.

    python bench/soak.py [--minutes 30] [--rate 500] [--max-growth-mb 30] [--cache-mib 8]

SQLite's page caches are bounded but large by default (64 MiB a store connection, 512
MiB the index writer) and fill for as long as it takes to write that much: at 500
events/s longer than the soak, so RSS would rise throughout by design. The server runs
with AUDITKEEP_SQLITE_CACHE_MIB=--cache-mib, so the caches are full within the warm-up
and growth after it is memory something else holds (0 keeps the defaults).

Samples the RSS of the server and its child processes every 10 s. After a warm-up (the
first tenth of the run, at least 20 s), the baseline is the RSS right then; the check
compares the mean RSS of the last third of the samples with the first third: growth
over --max-growth-mb, or an RSS rising across every sixth of the run by more than a
sixth of that limit in all (a leak's trend), fails the soak (exit 1) with the figures.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson

from common import events, scratch

SAMPLE_S = 10.0


def rss_mb(pid: int) -> float:
    """RSS of `pid` and its children (indexer, ingest workers), in MB."""
    total = 0
    pids = [pid] + [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                    and _parent(p) == pid]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def _parent(p: Path) -> int:
    try:
        return int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def load(url: str, token: str, rate: int, stop: threading.Event, counts: dict[str, int]
         ) -> None:
    """`rate` events/s in batches of 50, plus one search and one inclusion proof for
    each batch; any 5xx or transport error is counted."""
    batch = 50
    rng = random.Random(3)
    bodies = [b"\n".join(orjson.dumps(e) for e in events(batch, seed=s)) for s in range(20)]
    with httpx.Client(base_url=url, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as c:
        next_at = time.perf_counter()
        while not stop.is_set():
            try:
                r = c.post("/v1/events", content=rng.choice(bodies),
                           headers={"Content-Type": "application/x-ndjson"})
                counts["ingest"] += 1
                counts["errors"] += r.status_code >= 500
                size = r.json()["receipts"][-1]["seq"] + 1 if r.status_code == 201 else 0
                r = c.get("/v1/search", params={"query": f"actor.id:user-{rng.randrange(50)}",
                                                "limit": 20})
                counts["search"] += 1
                counts["errors"] += r.status_code >= 500
                if size:
                    r = c.get("/v1/logs/default/proof/inclusion",
                              params={"seq": rng.randrange(size)})
                    counts["proof"] += 1
                    counts["errors"] += r.status_code >= 500
            except httpx.HTTPError:
                counts["errors"] += 1
            next_at += batch / rate
            time.sleep(max(0.0, next_at - time.perf_counter()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--rate", type=int, default=500, help="events/s")
    ap.add_argument("--max-growth-mb", type=float, default=30.0)
    ap.add_argument("--cache-mib", type=int, default=8,
                    help="cap on each SQLite page cache of the server (0: the defaults)")
    args = ap.parse_args()
    if args.cache_mib:
        os.environ["AUDITKEEP_SQLITE_CACHE_MIB"] = str(args.cache_mib)
    from tests.conftest import start_server

    from auditkeep.datadir import DataDir

    srv = start_server(DataDir(scratch("soak") / "data"))
    stop = threading.Event()
    counts = {"ingest": 0, "search": 0, "proof": 0, "errors": 0}
    loader = threading.Thread(target=load, args=(srv.url, srv.admin_token, args.rate,
                                                 stop, counts))
    loader.start()
    seconds = args.minutes * 60
    warmup = max(20.0, seconds / 10)
    samples: list[tuple[float, float]] = []
    start = time.monotonic()
    try:
        time.sleep(warmup)
        baseline = rss_mb(srv.proc.pid)
        print(f"baseline RSS after {warmup:.0f}s warm-up: {baseline:.1f} MB", flush=True)
        while (t := time.monotonic() - start) < seconds:
            samples.append((t, rss_mb(srv.proc.pid)))
            print(f"  t={t:6.0f}s  RSS {samples[-1][1]:7.1f} MB  requests {counts}",
                  flush=True)
            time.sleep(SAMPLE_S)
    finally:
        stop.set()
        loader.join()
        srv.stop()
    rss = [m for _, m in samples]
    if len(rss) < 6:
        print("too few samples: run at least 2 minutes", file=sys.stderr)
        return 2
    third = len(rss) // 3
    first, last = statistics.mean(rss[:third]), statistics.mean(rss[-third:])
    sixths = [statistics.mean(rss[i * len(rss) // 6:(i + 1) * len(rss) // 6])
              for i in range(6)]
    # A leak's trend: every sixth above the one before, by more than a sixth of the
    # limit in all (a creep of ~1 MB over 30 min, allocator noise, is reported, not failed).
    rising = all(b > a for a, b in itertools.pairwise(sixths)) and \
        sixths[-1] - sixths[0] > args.max_growth_mb / 6
    growth = last - first
    print(f"soak {args.minutes:g} min at {args.rate}/s, SQLite caches "
          f"{args.cache_mib or 'default'} MiB: RSS first third {first:.1f} MB, "
          f"last third {last:.1f} MB (growth {growth:+.1f} MB, limit "
          f"{args.max_growth_mb:g}); peak {max(rss):.1f} MB; baseline after warm-up "
          f"{baseline:.1f} MB; sixths {', '.join(f'{x:.1f}' for x in sixths)}; leak trend: "
          f"{rising}; requests {counts}", flush=True)
    if growth > args.max_growth_mb or rising or counts["errors"]:
        print("SOAK FAILED: memory grew or requests failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
