"""Ingest throughput: HTTP bulk (NDJSON, 1,000 a request, 8 clients, durable acks) and
in-process append, each against the floor of appending the same canonical bytes to a
file with an fsync per 1,000. HTTP runs without ingest workers (`--ingest-workers 0`)
and with the server's default (and each `--workers N`), each followed by where the CPU
went: the benchmark's clients, the server process, its workers and its indexer.

    python bench/ingest.py [--events 200000] [--workers N ...] [--http-only]
"""

from __future__ import annotations

import argparse
import gc
import os
import threading
import time
from concurrent.futures import Future

import httpx
import orjson

from auditkeep.datadir import DataDir, open_node
from auditkeep.errors import Pushback
from auditkeep.log.canonical import canonical_bytes
from auditkeep.log.sequencer import AppendResult
from auditkeep.pipeline.prepare import Pending, prepare
from auditkeep.pipeline.validate import decode_events
from common import events, report, scratch, searchable_latency


def floor(path: str, lines: list[bytes], per_sync: int = 1000) -> float:
    """Appending the entries to a file, fsync per 1,000: what durability alone costs."""
    t = time.perf_counter()
    with open(path, "ab") as f:
        for i in range(0, len(lines), per_sync):
            f.write(b"".join(lines[i : i + per_sync]))
            f.flush()
            os.fsync(f.fileno())
    return len(lines) / (time.perf_counter() - t)


def in_process(bodies: list[bytes], n: int, *, prepared: bool) -> float:
    d = DataDir(scratch("inproc") / "data")
    node = open_node(d, with_index=False)
    try:
        futures: list[Future[AppendResult]] = []

        def submit(p: list[Pending]) -> None:
            while True:
                try:
                    futures.append(node.logs.append("default", p))
                    return
                except Pushback:  # the queue is full: wait for the oldest commit, retry
                    next(f for f in futures if not f.done()).result()

        if prepared:
            batches = [prepare(decode_events(b, ndjson=True), tenant="default",
                               submitter="tok_bench", may_set_tenant=False) for b in bodies]
            t = time.perf_counter()
            for p in batches:
                submit(p)
        else:
            t = time.perf_counter()
            for b in bodies:
                submit(prepare(decode_events(b, ndjson=True), tenant="default",
                               submitter="tok_bench", may_set_tenant=False))
        for f in futures:
            f.result()
        return n / (time.perf_counter() - t)
    finally:
        node.close()


def _cpu(pid: int) -> float:
    """User + system CPU seconds a process has used (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except OSError:
                continue
    return out


class CpuSplit:
    """CPU seconds per event of each party to the HTTP run: the benchmark's own client
    threads, the server's parent process, its ingest workers and its indexer child."""

    def __init__(self, server_pid: int, worker_pids: list[int]) -> None:
        self.server, self.workers = server_pid, worker_pids
        self.others = [p for p in _children(server_pid) if p not in worker_pids]
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        return {"clients": time.process_time(), "server": _cpu(self.server),
                "workers": sum(map(_cpu, self.workers)),
                "indexer": sum(map(_cpu, self.others)), "wall": time.perf_counter()}

    def line(self, n: int) -> str:
        end = self._now()
        d = {k: end[k] - self.start[k] for k in end}
        wall = d.pop("wall")
        total = sum(d.values())
        parts = "  ".join(f"{k} {v / n * 1e6:.1f}" for k, v in d.items())
        return (f"  CPU µs/event while ingesting: {parts}  (total {total / n * 1e6:.1f}; "
                f"{total / wall:.2f} of {os.cpu_count()} cores busy)")

    def indexer_total(self, n: int) -> float:
        """The indexer's CPU µs an event, its catching up after the last ack included."""
        return (sum(map(_cpu, self.others)) - self.start["indexer"]) / n * 1e6


def http(bodies: list[bytes], n: int, clients: int = 8, workers: int | None = None,
         serve_args: tuple[str, ...] = ()) -> tuple[float, int, str]:
    """Events/s, how many ingest workers the server ran, and where the CPU went.
    `serve_args`: more `auditkeep serve` options (e.g. `--config FILE`)."""
    from tests.conftest import start_server

    d = DataDir(scratch("http") / "data")
    extra = () if workers is None else ("--ingest-workers", str(workers))
    srv = start_server(d, *extra, *serve_args)
    try:
        with srv.client() as c:
            pids = c.get("/v1/status").json().get("ingest", {}).get("worker_pids", [])
        token = srv.admin_token
        queue = list(bodies)
        lock = threading.Lock()
        errors: list[str] = []

        def worker() -> None:
            with httpx.Client(base_url=srv.url, timeout=120, headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/x-ndjson"}) as c:
                while True:
                    with lock:
                        if not queue:
                            return
                        body = queue.pop()
                    while True:
                        r = c.post("/v1/events", content=body)
                        if r.status_code == 503:
                            time.sleep(float(r.headers.get("retry-after", "1")) / 10)
                            continue
                        if r.status_code != 201:
                            errors.append(r.text[:200])
                        break

        threads = [threading.Thread(target=worker) for _ in range(clients)]
        split = CpuSplit(srv.proc.pid, pids)
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        rate = n / (time.perf_counter() - t)
        cpu = split.line(n)
        if errors:
            raise SystemExit(f"ingest errors: {errors[:3]}")
        # how long until everything is searchable (indexer catching up)
        t2 = time.perf_counter()
        with srv.client() as c:
            while c.get("/v1/status").json()["logs"]["default"]["index"]["lag"] > 0:
                time.sleep(0.05)
        catchup = time.perf_counter() - t2
        return rate, len(pids), (f"{cpu}\n  indexer caught up {catchup:.2f}s after the last "
                               f"ack, {split.indexer_total(n):.1f} µs/event of CPU in all")
    finally:
        srv.stop()


def delivery_latency(rate: int = 10_000, seconds: float = 15.0) -> None:
    """Ack -> searchable while ingest runs at `rate` events/s: the indexer's lag as a
    user sees it, on a fresh data directory."""
    from tests.conftest import start_server

    srv = start_server(DataDir(scratch("latency") / "data"))
    searchable_latency(srv, "fresh index", rate, seconds)


def main() -> None:
    gc.set_threshold(50_000, 20, 100)  # as `auditkeep serve` does
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--http-only", action="store_true",
                    help="only the floor and the HTTP figures (no in-process, no latency)")
    ap.add_argument("--workers", type=int, action="append", default=None, metavar="N",
                    help="also an HTTP run with `serve --ingest-workers N` (repeatable); "
                         "runs without workers and with the server's default always happen")
    args = ap.parse_args()
    n = args.events
    evs = events(n)
    bodies = [b"\n".join(orjson.dumps(e) for e in evs[i : i + 1000]) for i in range(0, n, 1000)]
    lines = [canonical_bytes(e) + b"\n" for e in evs]
    base = floor(str(scratch("floor") / "floor.ndjson"), lines)
    print(f"events: {n:,}, {len(bodies)} requests of 1,000; "
          f"mean canonical size {sum(map(len, lines)) / n:.0f} B")
    report("floor: file append + fsync per 1,000", base, "events/s", "itself", base)
    if not args.http_only:
        report("in-process append (prepared events)", in_process(bodies, n, prepared=True),
               "events/s", "floor", base, ">= 150,000/s")
        report("in-process (decode + validate + append)", in_process(bodies, n,
                                                                     prepared=False),
               "events/s", "floor", base)
    for workers in [0, None, *(args.workers or [])]:
        rate, count, cpu = http(bodies, n, workers=workers)
        label = (f"{count} workers" if count else "no workers") + (
            " (default)" if workers is None else "")
        report(f"HTTP bulk NDJSON, 8 clients, {label}", rate, "events/s", "floor", base,
               ">= 50,000/s")
        print(cpu, flush=True)
    if not args.http_only:
        delivery_latency()


if __name__ == "__main__":
    main()
