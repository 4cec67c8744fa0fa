"""SDK: caller-thread `emit` latency (disk and memory spool) against a no-op call, and the
events/s one SDK process pushes to a real local server against a plain httpx loop posting
the same events in batches of the same size. Same run, same machine, same server."""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from auditkeep.client import AuditClient
from auditkeep.datadir import DataDir
from common import events, percentiles, report, scratch

BATCH = 500


def latencies(call: Callable[[dict[str, Any]], Any], evs: list[dict[str, Any]]
              ) -> list[float]:
    """Per-call wall time in µs, measured around each call on this thread."""
    out = []
    clock = time.perf_counter_ns
    for e in evs:
        t = clock()
        call(e)
        out.append((clock() - t) / 1000)
    return out


def noop(event: dict[str, Any]) -> None:
    return None


def emit_with(client: AuditClient) -> Callable[[dict[str, Any]], Any]:
    emit = client.emit

    def call(e: dict[str, Any]) -> Any:
        return emit(e["action"], actor=e["actor"], outcome=e["outcome"],
                    resource=e["resource"], metadata=e["metadata"], category=e["category"])
    return call


def latency_table(url: str, token: str, n: int) -> None:
    evs = events(n)
    for e in evs:
        e.pop("time")
    base = latencies(noop, evs)
    b50, _, b99 = percentiles(base)
    for durability, target in (("memory", "<= 5 µs"), ("disk", "<= 20 µs")):
        # parked: the sender waits for 10,000 events, so this is the caller's own cost;
        # running: batches of 500 leave every 0.2 s and compete for the GIL.
        for mode, options in (("sender parked", {"batch_size": 10_000, "batch_age": 3600}),
                              ("sender running", {})):
            client = AuditClient(url, token, scratch(f"sdk-{durability}") / "spool",
                                 durability=durability,  # type: ignore[arg-type]
                                 spool_limit=1 << 34, **options)  # type: ignore[arg-type]
            call = emit_with(client)
            for e in evs[:2000]:  # warm up
                call(e)
            lat = latencies(call, evs)
            p50, _, p99 = percentiles(lat)
            client.flush(120)
            client.close()
            print(f"emit ({durability} spool, {mode}): p50 {p50:.1f} µs  p99 {p99:.1f} µs"
                  f"   baseline no-op call: p50 {b50:.2f} µs  p99 {b99:.2f} µs"
                  f"   target p50 {target}", flush=True)


def sdk_throughput(url: str, token: str, evs: list[dict[str, Any]]) -> float:
    client = AuditClient(url, token, scratch("sdk-push") / "spool", batch_size=BATCH)
    t = time.perf_counter()
    for e in evs:
        client.emit_event(e)
    assert client.flush(600)
    rate = len(evs) / (time.perf_counter() - t)
    assert client.stats()["sent"] == len(evs)
    client.close()
    return rate


def httpx_throughput(url: str, token: str, evs: list[dict[str, Any]]) -> float:
    with httpx.Client(base_url=url, timeout=60,
                      headers={"Authorization": f"Bearer {token}"}) as c:
        t = time.perf_counter()
        for i in range(0, len(evs), BATCH):
            body = orjson.dumps(evs[i : i + BATCH])
            r = c.post("/v1/events", content=body, headers={"Content-Type": "application/json"})
            r.raise_for_status()
        return len(evs) / (time.perf_counter() - t)


def main() -> None:
    gc.set_threshold(50_000, 20, 100)
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    args = ap.parse_args()
    from tests.conftest import start_server  # importable once `common` set sys.path

    srv = start_server(DataDir(scratch("sdk-server") / "data"))
    try:
        latency_table(srv.url, srv.admin_token, min(args.events, 50_000))
        evs = events(args.events, seed=2)
        for i, e in enumerate(evs):
            e["id"] = f"push-{i}"
        plain = [dict(e, id=f"plain-{i}") for i, e in enumerate(evs)]
        base = httpx_throughput(srv.url, srv.admin_token, plain)
        rate = sdk_throughput(srv.url, srv.admin_token, evs)
        report(f"SDK push to a local server ({BATCH}/batch)", rate, "events/s",
               f"httpx loop, {BATCH}/request", base)
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
