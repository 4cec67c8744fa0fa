"""Retention on SQLite: the dry-run plan's walk and a whole run (purge record, search
index forget, store purge) over a log where one category of five is due.

    python bench/retention.py [--events 50000]

Baseline from the same run: reading and decoding every entry (`read_bundles` +
`orjson.loads`), what any walk of the log must at least do.
"""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import UTC, datetime, timedelta

import orjson

from auditkeep.datadir import DataDir, open_node
from auditkeep.pipeline.config_keeping import RetentionConfig
from auditkeep.retention.policy import Keep, Layer
from auditkeep.retention.purge import Retention
from common import build_log, report, scratch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)
    args = ap.parse_args()
    n = args.events
    built = DataDir(build_log(f"log-{n}-indexed", n, with_index=True))
    copy = scratch("retention") / "data"
    shutil.copytree(built.root, copy)  # the run changes it; the built log is reused
    node = open_node(DataDir(copy))
    node.start()
    try:
        assert node.indexer is not None and node.indexer.wait_caught_up(600)
        info = node.logs.info("default")
        size = node.logs.size("default")
        t = time.perf_counter()
        for start in range(0, size, 1024):
            for b in node.store.read_bundles(info.id, start, min(size, start + 1024)):
                for entry in b.entries:
                    orjson.loads(entry)
        decode = size / (time.perf_counter() - t)

        config = RetentionConfig(defaults=Layer(categories={"data_access": Keep(1)}))
        r = Retention(node.logs, node.index, config)
        later = datetime.now(UTC) + timedelta(days=400)
        t = time.perf_counter()
        (plan,) = [p for p in r.plan(["default"], now=later) if p.log == "default"]
        walked = plan.scanned / (time.perf_counter() - t)
        report(f"plan walk of {plan.scanned:,} entries ({plan.events:,} due)", walked,
               "entries/s", "read + decode every entry", decode)
        t = time.perf_counter()
        done = r.run(["default"], now=later)
        took = time.perf_counter() - t
        assert done.events == plan.events, (done.events, plan.events)
        report(f"run: purge {done.events:,} events (index + store)", done.events / took,
               "events/s", "read + decode every entry", decode)
    finally:
        node.close()


if __name__ == "__main__":
    main()
