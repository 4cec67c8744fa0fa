"""The scheduled self-audit on SQLite: an hourly pass (every stored checkpoint's
signature and consistency with the next, 64 random tiles recomputed from below) and a
daily full pass (that plus `verify`), over one log.

    python bench/selfaudit.py [--entries 200000]

Baseline from the same run: `verify` of the same log (what `auditkeep verify` costs).
"""

from __future__ import annotations

import argparse
import time

from auditkeep.datadir import DataDir, open_node
from auditkeep.health.selfaudit import SelfAudit
from auditkeep.log.keys import KeyRing
from auditkeep.log.verify import verify_log
from common import build_log, report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=200_000)
    args = ap.parse_args()
    n = args.entries
    d = DataDir(build_log(f"log-{n}", n, with_index=False))
    node = open_node(d, with_index=False, indexer="none")
    try:
        info = node.store.get_log("default")
        assert info is not None
        verifiers = [k.verifier(info.origin) for k in KeyRing(node.store, d.keys).published()]
        checkpoints = len(node.store.checkpoints(info.id))
        t = time.perf_counter()
        r = verify_log(node.store, info, verifiers)
        verify_s = time.perf_counter() - t
        assert r.ok, r.findings[:3]
        audit = SelfAudit(node, spot_checks=64)
        hourly = audit.run()
        assert hourly.ok, hourly.findings[:3]
        full = audit.run(full=True)
        assert full.ok, full.findings[:3]
        print(f"log of {n:,} entries, {checkpoints:,} stored checkpoints")
        report("verify (baseline)", n / verify_s, "entries/s", "itself", n / verify_s)
        report("hourly self-audit pass", 1 / hourly.seconds, "passes/s", "verify",
               1 / verify_s)
        report("daily self-audit pass (with verify)", 1 / full.seconds, "passes/s",
               "verify", 1 / verify_s)
        print(f"hourly pass {hourly.seconds * 1000:.0f} ms, daily pass {full.seconds:.2f} s, "
              f"verify {verify_s:.2f} s", flush=True)
    finally:
        node.close()


if __name__ == "__main__":
    main()
