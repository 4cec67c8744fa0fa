"""Ingest with the witness job running against ingest without it: the job must not slow
the append path. A real SQLite node; the witness is in the same process (it competes for
the GIL, the worst case), pushed to at most every 0.1 s.

    python bench/witness.py [--events 40000] [--batch 500]

Baselines from the same run (medians of alternated rounds, each on a fresh data
directory): the same appends with an idle thread woken by every commit, and with none.
"""

from __future__ import annotations

import argparse
import statistics
import time

from tests.witness.conftest import InProcess, append_events

from auditkeep.background import BackgroundLoop
from auditkeep.datadir import DataDir, open_node
from auditkeep.pipeline.config_keeping import WitnessConfig
from auditkeep.storage.memory import MemoryBackend
from auditkeep.witness.cosignature import WitnessSigner
from auditkeep.witness.job import WitnessJob
from auditkeep.witness.server import Witness
from common import report, scratch


class IdleJob(BackgroundLoop):
    """Woken by every commit like the witness job, and does nothing."""

    def step(self) -> bool:
        return False


def run(events: int, batch: int, witnessed: bool, idle: bool = False) -> tuple[float, int]:
    d = DataDir(scratch(f"witness-{witnessed}-{idle}") / "data")
    n = open_node(d, with_index=False)
    job: WitnessJob | None = None
    idle_job = IdleJob("idle", 0.1) if idle else None
    try:
        append_events(n, 1)  # the log and its key exist before the witness learns them
        if idle_job is not None:
            n.logs.on_commit(idle_job.notify)
            idle_job.start()
        if witnessed:
            signer = WitnessSigner.generate("witness.bench/w1")
            origin = n.logs.origin("default")
            keys = [k.verifier(origin) for k in n.keys.published()]
            transport = InProcess(Witness(signer, keys, MemoryBackend()))
            config = WitnessConfig("w1", "http://witness.bench", signer.vkey, interval=0.1)
            job = WitnessJob(n.logs, [config], transport=transport)
            job.start()
        t = time.perf_counter()
        for start in range(1, events, batch):
            append_events(n, min(batch, events - start), start)
        took = time.perf_counter() - t
        cosigned = 0
        if job is not None:
            job.stop()
            cosigned = job.pushers[0].pushes
        return events / took, cosigned
    finally:
        if idle_job is not None:
            idle_job.stop()
        if job is not None:
            job.close()
        n.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    run(2_000, args.batch, False)  # warm up imports and caches
    bases, idles, rates, cosigned = [], [], [], 0
    for _ in range(args.rounds):  # alternated, so drift hits all alike
        bases.append(run(args.events, args.batch, False)[0])
        idles.append(run(args.events, args.batch, False, idle=True)[0])
        rate, pushed = run(args.events, args.batch, True)
        rates.append(rate)
        cosigned += pushed
    # Any thread woken per commit changes how the appending thread and the sequencer
    # hand off the GIL (seen as a speed-up), so the fair baseline is an idle such thread.
    label = f"append with a witness job ({cosigned} cosignatures in {args.rounds} runs)"
    report(label, statistics.median(rates), "events/s", "idle thread woken per commit",
           statistics.median(idles))
    report("", statistics.median(rates), "events/s", "no thread at all",
           statistics.median(bases))


if __name__ == "__main__":
    main()
