"""Legal holds: what `active_matcher` costs the retention walk per record: no hold, one
hold on columns, one on free text, ten of all kinds (each query misses, the worst case:
every hold is tried).

    python bench/holds.py [--records 50000]

Baseline from the same run: `orjson.loads` of the same canonical entries, which the walk
does for every record anyway.
"""

from __future__ import annotations

import argparse
import random
import time

import msgspec
import orjson

from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.schema import Event
from auditkeep.retention.holds import active_matcher
from auditkeep.storage.base import HoldRecord
from auditkeep.storage.memory import MemoryBackend
from common import make_event, report

QUERIES = ["actor:user-99999", "action:payments.* AND outcome:failure",
           "resource.id:acct-42 OR resource.id:acct-43", "metadata.currency:USD",
           '"wire transfer"', "source.service:ledger", "actor.type:service -outcome:success",
           "metadata.amount:>1000000", "request_id:req-x*", "severity:critical"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=50_000)
    args = ap.parse_args()
    rng = random.Random(14)
    base_us = int((time.time() - 86_400) * 1e6)
    events = msgspec.convert([make_event(i, rng, base_us) for i in range(args.records)],
                             list[Event])
    pendings = prepare(events, tenant="acme", submitter="bench", may_set_tenant=True)
    entries = [p.entry_head + str(i).encode() + p.entry_tail for i, p in enumerate(pendings)]
    t = time.perf_counter()
    records = [orjson.loads(e) for e in entries]
    decode = len(entries) / (time.perf_counter() - t)
    for label, queries in (("no active hold", []), ("1 hold on columns", QUERIES[:1]),
                           ("1 hold on free text", QUERIES[4:5]), ("10 holds", QUERIES)):
        store = MemoryBackend()
        for i, q in enumerate(queries):
            store.put_hold(HoldRecord(id=f"hold_{i:012d}", tenant="acme", query=q,
                                      reason="bench", created_by="bench", created="now"))
        held = active_matcher(store, "acme")
        t = time.perf_counter()
        n = sum(1 for r in records if held(r))
        rate = len(records) / (time.perf_counter() - t)
        assert n == 0, n
        report(f"hold test, {label}", rate, "records/s",
               "orjson.loads of the entry", decode)


if __name__ == "__main__":
    main()
