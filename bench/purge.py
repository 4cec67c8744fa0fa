"""Retention purge on SQLite: one `purge` call of 10,000 seqs (contiguous, and scattered
as a category's events are), and `verify` over the purged log.

    python bench/purge.py [--entries 200000]

Baselines from the same run: reading the bundles the call spans (what a purge must at
least decompress); `verify` of the same log before the purge.
"""

from __future__ import annotations

import argparse
import shutil
import time

from auditkeep.datadir import DataDir
from auditkeep.log.keys import KeyRing
from auditkeep.log.verify import verify_log
from auditkeep.storage.base import Backend, Purge
from common import build_log, report, scratch

CALL = 10_000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=200_000)
    args = ap.parse_args()
    n = args.entries
    built = DataDir(build_log(f"log-{n}", n, with_index=False))
    copy = scratch("purge") / "data"
    shutil.copytree(built.root, copy)  # the purge changes it; the built log is reused
    d = DataDir(copy)
    store = d.open_backend()
    try:
        info = store.get_log("default")
        assert info is not None
        verifiers = [k.verifier(info.origin) for k in KeyRing(store, d.keys).published()]

        def verify_rate() -> float:
            t = time.perf_counter()
            r = verify_log(store, info, verifiers)
            assert r.ok, r.findings[:3]
            return r.entries / (time.perf_counter() - t)

        before = verify_rate()
        contiguous = list(range(CALL))
        scattered = list(range(n // 2, n // 2 + 3 * CALL, 3))  # every third event
        for label, seqs in (("contiguous", contiguous), ("scattered 1 in 3", scattered)):
            read = _read(store, info.id, seqs)
            t = time.perf_counter()
            assert store.purge(Purge(info.id, seqs, record_seq=n - 1)) == len(seqs)
            took = time.perf_counter() - t
            report(f"purge of {CALL:,} seqs ({label})", len(seqs) / took, "seqs/s",
                   "reading their bundles", len(seqs) / read)
        # the record seq holds no purge record here: only that finding is expected
        after_t = time.perf_counter()
        r = verify_log(store, info, verifiers)
        after = r.entries / (time.perf_counter() - after_t)
        assert {f.kind for f in r.findings} == {"purge-unrecorded"}, r.findings[:3]
        report(f"verify of {n:,} entries, {r.purged:,} purged", after, "entries/s",
               "verify before the purge", before)
    finally:
        store.close()


def _read(store: Backend, log_id: int, seqs: list[int]) -> float:
    t = time.perf_counter()
    store.read_bundles(log_id, seqs[0], seqs[-1] + 1)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
