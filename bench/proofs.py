"""Proof latency at 1M entries (warm, and in a cold process) and full `verify` throughput.

    python bench/proofs.py [--entries 1000000]

Baselines from the same run: reading one stored entry by seq (one indexed row read +
decompress) for proofs; bare SHA-256 over every entry for verify.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import subprocess
import sys
import time

from auditkeep.datadir import DataDir
from auditkeep.log.keys import KeyRing
from auditkeep.log.service import LogService
from auditkeep.log.verify import verify_log
from common import build_log, percentiles

COLD = """
import sys, time
from auditkeep.datadir import DataDir
from auditkeep.log.keys import KeyRing
from auditkeep.log.service import LogService
d = DataDir(__import__("pathlib").Path(sys.argv[1]))
store = d.open_backend()
logs = LogService(store, KeyRing(store, d.keys))
seq, size = int(sys.argv[2]), int(sys.argv[3])
t = time.perf_counter()
logs.inclusion_proof("default", seq, size)
print(time.perf_counter() - t)
"""


def ms(x: float) -> str:
    return f"{x * 1e3:.3f} ms"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--samples", type=int, default=2000)
    args = ap.parse_args()
    n = args.entries
    d = DataDir(build_log(f"log-{n}", n, with_index=False))
    store = d.open_backend()
    logs = LogService(store, KeyRing(store, d.keys))
    rng = random.Random(3)
    for _ in range(200):  # warm the page cache and the connection
        logs.inclusion_proof("default", rng.randrange(n), n)

    def sample(fn: object, k: int) -> list[float]:
        out = []
        for _ in range(k):
            t = time.perf_counter()
            fn()  # type: ignore[operator]
            out.append(time.perf_counter() - t)
        return out

    base = sample(lambda: logs.entry("default", rng.randrange(n)), args.samples)
    inc = sample(lambda: logs.inclusion_proof("default", rng.randrange(n), n), args.samples)

    def cons() -> None:
        a = rng.randrange(1, n)
        logs.consistency_proof("default", a, rng.randrange(a, n + 1))

    con = sample(cons, args.samples)
    b50, _, b99 = percentiles(base)
    for name, xs in (("inclusion proof (warm)", inc), ("consistency proof (warm)", con)):
        p50, _, p99 = percentiles(xs)
        print(f"{name:<34} p50 {ms(p50)}  p99 {ms(p99)}   baseline one-entry read: "
              f"p50 {ms(b50)}  p99 {ms(b99)}   (p99 ratio {p99 / b99:.2f}; target p99 <= 1 ms)")
    cold = []
    for _ in range(15):
        out = subprocess.run([sys.executable, "-c", COLD, str(d.root), str(rng.randrange(n)),
                              str(n)], capture_output=True, text=True, check=True)
        cold.append(float(out.stdout))
    c50, _, c99 = percentiles(cold)
    print(f"{'inclusion proof (cold process)':<34} p50 {ms(c50)}  p99 {ms(c99)}   "
          "(first proof of a fresh process: connection, page cache)")
    info = store.get_log("default")
    assert info is not None
    ring = KeyRing(store, d.keys)
    t = time.perf_counter()
    report = verify_log(store, info, [k.verifier(info.origin) for k in ring.published()])
    rate = report.entries / (time.perf_counter() - t)
    assert report.ok, report.findings[:3]
    t = time.perf_counter()
    count = 0
    for b in store.read_bundles(info.id, 0, n):
        for e in b.entries:
            hashlib.sha256(b"\x00" + e).digest()
            count += 1
    floor = count / (time.perf_counter() - t)
    print(f"{'verify (full log)':<34} {rate:,.0f} entries/s   baseline read + SHA-256 every "
          f"entry: {floor:,.0f} entries/s (ratio {rate / floor:.2f}; target >= 300,000/s)")
    store.close()


if __name__ == "__main__":
    main()
