"""The redaction stage's cost: events/s through the stage alone with every detector on,
then ingest end to end with and without a `redact` stage in the same run (in process:
decode + pipeline + prepare + append; and HTTP bulk through a real server).

Target: the stage costs at most 30% of end-to-end ingest throughput (HTTP with the
stage >= 0.7 x the same pipeline without it: `normalise` alone against `normalise` +
`redact`).

    python bench/redaction.py [--events 100000] [--leaky 0.2] [--no-http]
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from concurrent.futures import Future
from typing import Any

import orjson

from auditkeep.datadir import DataDir, open_node
from auditkeep.errors import Pushback
from auditkeep.log.sequencer import AppendResult
from auditkeep.pipeline.config import parse_config
from auditkeep.pipeline.schemas import ActionSchemas
from auditkeep.privacy.detectors import DETECTORS
from auditkeep.privacy.policy import RedactionPolicy
from auditkeep.server.batches import IngestJob, prepare_batch
from auditkeep.server.pipelines import Pipelines
from auditkeep.storage.memory import MemoryBackend
from common import events, report, scratch
from ingest import http

BASELINE = """
pipeline: [normalise]
"""
CONFIG = """
pipeline:
  - normalise
  - redact:
      detectors: all
      fields:
        - {path: metadata.card_last4, action: mask}
        - {path: metadata.customer, action: hash}
"""
LEAKS = ["mail me at jane.doe@example.org", "card 4242 4242 4242 4242",
         "https://x.example/cb?token=abc123def456&y=1", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIx"
         "In0.c2lnbmF0dXJlLXZhbHVlLWhlcmU", "key AKIAQ3EGUDSZKJ2XW7LM", "call +44 20 7946 0958",
         "ssn 078-05-1120", "from 203.0.113.9"]


def workload(n: int, leaky: float, seed: int = 7) -> list[dict[str, Any]]:
    """bench/common.py's events; a `leaky` share carry a secret or personal value in a
    note, a URL or a nested request body (the rest are clean, as most audit events are)."""
    rng = random.Random(seed)
    out = events(n, seed=seed)
    for ev in out:
        ev["metadata"]["url"] = f"https://api.example.com/v1/orders/{rng.randrange(10**6)}"
        ev["metadata"]["customer"] = f"cust-{rng.randrange(10**5)}"
        if rng.random() < leaky:
            ev["metadata"]["body"] = {"comment": rng.choice(LEAKS), "password": "pw-123456"}
    return out


def stage_alone(evs: list[dict[str, Any]]) -> tuple[float, float]:
    """Events/s of the policy alone (all detectors), and of the copy it works on."""
    policy = RedactionPolicy(detectors=tuple(DETECTORS), key=b"k" * 32)
    blobs = [orjson.dumps(e) for e in evs]
    t = time.perf_counter()
    copies = [orjson.loads(b) for b in blobs]
    copy_rate = len(evs) / (time.perf_counter() - t)
    copies = [orjson.loads(b) for b in blobs]
    t = time.perf_counter()
    for e in copies:
        policy.apply(e)
    return len(evs) / (time.perf_counter() - t), copy_rate


def in_process(bodies: list[bytes], n: int, config: str | None) -> float:
    """decode + pipeline + prepare + append to a real SQLite log, as the server does."""
    d = DataDir(scratch("redact-inproc") / "data")
    node = open_node(d, with_index=False)
    cfg = parse_config(config) if config else None
    pipes = Pipelines(cfg, ActionSchemas(MemoryBackend()), secret=b"s" * 32)
    try:
        futures: list[Future[AppendResult]] = []
        t = time.perf_counter()
        for b in bodies:
            batch = prepare_batch(IngestJob(b, True, "default", False, "tok_bench", True), pipes)
            while True:
                try:
                    futures.append(node.logs.append("default", batch.pendings))
                    break
                except Pushback:
                    next(f for f in futures if not f.done()).result()
        for f in futures:
            f.result()
        return n / (time.perf_counter() - t)
    finally:
        node.close()


def main() -> None:
    gc.set_threshold(200_000, 20, 100)  # as `auditkeep serve` does
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--leaky", type=float, default=0.2, help="share of events with a secret")
    ap.add_argument("--no-http", action="store_true", help="skip the two server runs")
    args = ap.parse_args()
    n = args.events
    evs = workload(n, args.leaky)
    bodies = [b"\n".join(orjson.dumps(e) for e in evs[i : i + 1000])
              for i in range(0, n, 1000)]
    print(f"{n:,} events, {args.leaky:.0%} with a secret or personal value; "
          f"detectors: {', '.join(DETECTORS)}", flush=True)
    rate, copy_rate = stage_alone(evs[:20_000])
    report("redact stage alone (all detectors)", rate, "events/s",
           "orjson.loads of the same events", copy_rate)
    bare = in_process(bodies, n, None)
    without = in_process(bodies, n, BASELINE)
    with_stage = in_process(bodies, n, CONFIG)
    report("in-process ingest, no pipeline", bare, "events/s", "normalise only", without)
    report("in-process ingest, normalise + redact", with_stage, "events/s",
           "normalise only (same run)", without, "ratio >= 0.70")
    if args.no_http:
        return
    cfg = scratch("redact-config") / "auditkeep.yaml"
    cfg.write_text(CONFIG)
    plain_cfg = cfg.with_name("plain.yaml")
    plain_cfg.write_text(BASELINE)
    base, workers, cpu_base = http(bodies, n, serve_args=("--config", str(plain_cfg)))
    print(f"  without: {workers} ingest workers\n  {cpu_base}", flush=True)
    red, _, cpu_red = http(bodies, n, serve_args=("--config", str(cfg)))
    print(f"  with: {cpu_red}", flush=True)
    report("HTTP bulk ingest, normalise + redact", red, "events/s",
           "normalise only (same run)", base, "ratio >= 0.70")


if __name__ == "__main__":
    main()
