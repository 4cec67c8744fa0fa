"""Shared by the benchmarks: realistic events, timing, and printing figure vs baseline."""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so `tests.conftest.start_server` can be reused

ACTIONS = ["orders.create", "orders.delete", "orders.refund", "users.login", "users.logout",
           "iam.role.grant", "secrets.read", "config.update", "invoices.export", "k8s.pods.exec"]
OUTCOMES = ["success"] * 8 + ["failure", "denied"]
CATEGORIES = ["data_change", "data_access", "auth", "admin", "config"]
SERVICES = ["billing", "gateway", "iam", "orders", "k8s-api"]


def make_event(i: int, rng: random.Random, base_us: int, step_us: int = 1000
               ) -> dict[str, Any]:
    actor = f"user-{rng.randrange(5000)}"
    return {
        "action": rng.choice(ACTIONS),
        "actor": {"id": actor, "type": "user", "email": f"{actor}@example.com",
                  "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"},
        "outcome": rng.choice(OUTCOMES),
        "category": rng.choice(CATEGORIES),
        "time": _iso(base_us + i * step_us),
        "resource": {"type": "order", "id": str(rng.randrange(1_000_000))},
        "source": {"service": rng.choice(SERVICES), "region": "eu-west-1"},
        "request_id": f"req-{i}",
        "metadata": {"amount": rng.randrange(100_000), "currency": "EUR",
                     "note": f"batch {i // 1000} item {i % 1000}"},
    }


def _iso(us: int) -> str:
    import datetime as dt

    return (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=us)).isoformat(
        timespec="microseconds") + "Z"


def events(n: int, seed: int = 1, base_us: int | None = None, step_us: int = 1000
           ) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    base = base_us if base_us is not None else int((time.time() - 86_400 * 30) * 1e6)
    return [make_event(i, rng, base, step_us) for i in range(n)]


def build_log(name: str, n: int, *, with_index: bool, span_s: float = 30 * 86_400,
              tenant: str = "default") -> Path:
    """A data directory whose `tenant` log holds `n` events spread over the last `span_s`
    seconds (30 days), built in-process (reused when it already has `n` entries)."""
    import gc

    import orjson

    from auditkeep.datadir import DataDir, open_node
    from auditkeep.errors import Pushback
    from auditkeep.pipeline.prepare import prepare
    from auditkeep.pipeline.validate import decode_events

    gc.set_threshold(50_000, 20, 100)
    root = Path(os.environ.get("AUDITKEEP_BENCH_DIR", "/tmp/auditkeep-bench")) / name
    d = DataDir(root / "data")
    if d.exists():
        node = open_node(d, with_index=with_index)
        ready = node.logs.size(tenant) == n and (
            not with_index or (node.indexer is not None and node.indexer.wait_caught_up(0.1)))
        node.close()
        if ready:
            return d.root
    d = DataDir(scratch(name) / "data")
    node = open_node(d, with_index=with_index)
    node.start()
    step = int(span_s * 1e6 / n)
    base = int((time.time() - span_s) * 1e6)
    t = time.perf_counter()
    pending = []
    for start in range(0, n, 5000):
        evs = events(min(5000, n - start), seed=start, base_us=base + start * step, step_us=step)
        ps = prepare(decode_events(orjson.dumps(evs), ndjson=False), tenant=tenant,
                     submitter="tok_bench", may_set_tenant=False)
        while True:
            try:
                pending.append(node.logs.append(tenant, ps))
                break
            except Pushback:
                next(f for f in pending if not f.done()).result()
    for f in pending:
        f.result()
    print(f"built {n:,} entries in {time.perf_counter() - t:.1f}s", flush=True)
    if with_index and node.indexer is not None:
        t = time.perf_counter()
        node.indexer.wait_caught_up(3600)
        print(f"indexed {n:,} entries in {time.perf_counter() - t:.1f}s", flush=True)
    node.close()
    return d.root


def searchable_latency(srv: Any, label: str, rate: int = 10_000, seconds: float = 15.0,
                       tenant: str | None = None) -> None:
    """Ack -> searchable through the server `srv` (a `tests.conftest.ServerProcess`) while
    a loader posts `rate` events/s to it: each probe event is searched for by its
    resource id until found. Baseline: the same search once the probe is indexed.
    Prints the figure; stops the server."""
    import threading

    import orjson

    stop = threading.Event()
    body = b"\n".join(orjson.dumps(e) for e in events(1000, seed=9))
    where = {"tenant": tenant} if tenant else {}

    def load() -> None:
        with srv.client() as c:
            next_at = time.perf_counter()
            while not stop.is_set():
                c.post("/v1/events", content=body, params=where,
                       headers={"Content-Type": "application/x-ndjson"})
                next_at += 1000 / rate
                time.sleep(max(0.0, next_at - time.perf_counter()))

    loader = threading.Thread(target=load)
    loader.start()
    lat: list[float] = []
    base: list[float] = []
    try:
        with srv.client() as c:
            end = time.perf_counter() + seconds
            k = 0
            while time.perf_counter() < end:
                k += 1
                marker = f"probe-{k}"
                c.post("/v1/events", params=where, json={
                    "action": "bench.probe", "actor": {"id": "probe", "type": "system"},
                    "outcome": "success", "resource": {"type": "probe", "id": marker}})
                acked = time.perf_counter()
                q = {"query": f"resource.id:{marker}", **where}
                while not c.get("/v1/search", params=q).json()["events"]:
                    time.sleep(0.005)
                lat.append(time.perf_counter() - acked)
                t0 = time.perf_counter()
                c.get("/v1/search", params=q)
                base.append(time.perf_counter() - t0)
                time.sleep(0.2)
    finally:
        stop.set()
        loader.join()
        srv.stop()
    p50, p95, _ = percentiles(lat)
    b50, b95, _ = percentiles(base)
    print(f"ack -> searchable at {rate:,}/s, {label}: p50 {p50 * 1e3:.0f} ms  p95 "
          f"{p95 * 1e3:.0f} ms over {len(lat)} probes   baseline one search of an indexed "
          f"event: p50 {b50 * 1e3:.0f} ms  p95 {b95 * 1e3:.0f} ms   target p95 <= 1,000 ms",
          flush=True)


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    s = sorted(samples)
    q = statistics.quantiles(s, n=100, method="inclusive")
    return q[49], q[94], q[98]


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def report(name: str, value: float, unit: str, baseline_name: str, baseline: float,
           target: str = "") -> None:
    ratio = value / baseline if baseline else float("nan")
    tgt = f"   target {target}" if target else ""
    print(f"{name:<48} {value:>12,.0f} {unit:<9} baseline {baseline_name}: {baseline:,.0f} "
          f"{unit} (ratio {ratio:.2f}){tgt}", flush=True)


def scratch(name: str) -> Path:
    base = Path(os.environ.get("AUDITKEEP_BENCH_DIR", "/tmp/auditkeep-bench")) / name
    if base.exists():
        import shutil

        shutil.rmtree(base)
    base.mkdir(parents=True)
    return base


def bench_dir(name: str) -> Path:
    """`$AUDITKEEP_BENCH_DIR/name` as it is (not emptied, unlike `scratch`), for data a
    benchmark builds once and reuses."""
    return Path(os.environ.get("AUDITKEEP_BENCH_DIR", "/tmp/auditkeep-bench")) / name
