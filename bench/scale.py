"""Scale-out ingest (issue 13), in one run on the same events and the same machine:

(a) the embedded server (`auditkeep serve --data DIR`, SQLite): HTTP bulk NDJSON, acked
    when committed;
(b) two ingest nodes (`--role ingest`) and one sequencer (`--role sequencer`) on a fresh
    PostgreSQL schema and a fresh JetStream stream: the clients spread over both ingest
    ports with `?wait=accepted` (202 once JetStream holds the batch) and the figure runs
    until the log's signed checkpoint covers every event;
(c) the floor: a plain PostgreSQL `COPY` of the same canonical entries into a table
    (seq bigint, entry bytea), one commit per `--batch` rows (and once all in one commit).

Each figure is printed against (c) and against (a), with where the CPU went: the
sequencer's CPU µs an event, the ingest nodes' events per CPU-second (events/s/core), and
PostgreSQL's WAL bytes an event (cluster-wide: other clients of the server add to it).

    python bench/scale.py [--events 200000] [--batch 500] [--clients 8]
                          [--pg URL] [--nats URL] [--only sqlite,copy]
    python bench/scale.py --search [--search-events 1000000] [--samples 30]

`--search` compares search shapes (by actor, action + time window, free text, count by
action) through the HTTP API of a PostgreSQL node (`--role all`) and of the embedded
server, both loaded over HTTP with the same `--search-events` events over 30 days, sample
by sample interleaved (results compared). 1M events take ~10 minutes to load and index on
two cores; the issue's 10M (`--search-events 10000000`) takes well over an hour, most of
it the embedded server's indexer: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from common import ROOT, events, make_event, percentiles, report, scratch

CLK = os.sysconf("SC_CLK_TCK")


# --- events --------------------------------------------------------------------------

def uuid7(ms: int, rnd: int) -> str:
    """A UUIDv7 (the kind of id the SDK assigns; its dedup key is time-ordered)."""
    v = ((ms & (1 << 48) - 1) << 80 | 0x7 << 76 | ((rnd >> 62) & 0xFFF) << 64
         | 0b10 << 62 | (rnd & (1 << 62) - 1))
    h = f"{v:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def with_ids(evs: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Give each event an id, so retries are idempotent and the runs' results compare."""
    rng = random.Random(seed)
    ms = int(time.time() * 1000)
    for i, e in enumerate(evs):
        e["id"] = uuid7(ms + i // 64, rng.getrandbits(74))
    return evs


def bodies_of(evs: list[dict[str, Any]], batch: int) -> list[bytes]:
    return [b"\n".join(orjson.dumps(e) for e in evs[i : i + batch])
            for i in range(0, len(evs), batch)]


# --- processes -------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants (ingest workers, the indexer child)."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    tree, todo = [pid], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        tree += kids
        todo += kids
    return tree


class CpuMeter:
    """CPU seconds that a set of process trees used since it was made."""

    def __init__(self, pids: Iterable[int]) -> None:
        self.pids = list(pids)
        self.start = self._snapshot()

    def _snapshot(self) -> dict[int, float]:
        return {p: cpu_seconds(p) for root in self.pids for p in process_tree(root)}

    def used(self) -> float:
        end = self._snapshot()
        return sum(v - self.start.get(p, 0.0) for p, v in end.items())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    data: Path
    log: Path
    cmd: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.data / "admin.token").read_text().strip()

    def client(self, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout,
                            headers={"Authorization": f"Bearer {self.token}"})

    def output(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no output)"
        return "\n".join(text[-lines:]) or "(no output)"

    def fail(self, why: str) -> SystemExit:
        return SystemExit(f"{self.name}: {why}\n  command: {' '.join(self.cmd)}\n"
                          f"--- its output ({self.log}) ---\n{self.output()}")

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise self.fail(f"exited with status {self.proc.returncode}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start(name: str, data: Path, *args: str, timeout: float = 60.0) -> Server:
    """`auditkeep serve` in a child process; returns once /readyz answers 200, or exits
    the benchmark at once with the server's own output if it dies or never gets ready."""
    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    log = data.parent / f"{name}-{port}.log"
    cmd = [sys.executable, "-m", "auditkeep", "serve", "--data", str(data), "--port",
           str(port), "--no-detection", "--log-level", "warning", *args]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    srv = Server(name, proc, port, data, log, cmd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        srv.check_alive()
        try:
            if httpx.get(srv.url + "/readyz", timeout=1).status_code == 200:
                return srv
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    srv.stop()
    raise srv.fail(f"/readyz did not answer 200 within {timeout:.0f}s")


def stop_all(servers: Iterable[Server]) -> None:
    for s in servers:
        s.stop()


# --- PostgreSQL and JetStream scratch space ------------------------------------------------

def with_schema(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def create_schema(pg: str, prefix: str) -> str:
    import psycopg
    from psycopg import sql

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return schema


def drop_schema(pg: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE pid <> pg_backend_pid() AND query LIKE %s", (f"%{schema}%",))
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
            sql.Identifier(schema)))


def wal_lsn(pg: str) -> int:
    """PostgreSQL's current WAL position in bytes (cluster-wide)."""
    import psycopg

    with psycopg.connect(pg, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
    return int(row[0]) if row else 0


def schema_bytes(pg: str, schema: str) -> int:
    import psycopg

    with psycopg.connect(pg, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'm')", (schema,)).fetchone()
    return int(row[0]) if row else 0


def delete_stream(nats_url: str, stream: str) -> None:
    """Remove the run's JetStream stream (and its messages on the server's disk)."""
    async def go() -> None:
        import nats

        nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=0)
        try:
            await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()

    try:
        asyncio.run(go())
    except Exception as e:  # cleanup: say what failed, never mask the figures above
        if type(e).__name__ != "NotFoundError":  # the run failed before making it
            print(f"  (could not delete stream {stream}: {type(e).__name__}: {e})")


# --- HTTP load -----------------------------------------------------------------------

def post_all(servers: list[Server], bodies: list[bytes], clients: int,
             params: dict[str, str], ok: set[int]) -> None:
    """Post every body, `clients` threads spread over `servers` round robin; a 503 is
    retried after its Retry-After (scaled down, as bench/ingest.py does)."""
    queue = list(reversed(bodies))
    lock = threading.Lock()
    errors: list[str] = []

    def worker(srv: Server) -> None:
        with srv.client() as c:
            c.headers["Content-Type"] = "application/x-ndjson"
            while not errors:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                while True:
                    try:
                        r = c.post("/v1/events", content=body, params=params)
                    except httpx.HTTPError as e:
                        errors.append(f"{srv.name}: {type(e).__name__}: {e}")
                        return
                    if r.status_code == 503:
                        time.sleep(float(r.headers.get("retry-after", "1")) / 10)
                        continue
                    if r.status_code not in ok:
                        errors.append(f"{srv.name}: {r.status_code} {r.text[:300]}")
                    break

    threads = [threading.Thread(target=worker, args=(servers[i % len(servers)],))
               for i in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        for s in servers:
            s.check_alive()
        raise SystemExit(f"ingest errors: {errors[:3]}")


def checkpoint_size(servers: list[Server], tenant: str = "default") -> int:
    """The largest tree size any of the servers' latest signed checkpoints gives."""
    best = 0
    for s in servers:
        try:
            with s.client(timeout=5) as c:
                r = c.get(f"/v1/logs/{tenant}/checkpoint")
        except httpx.HTTPError:
            continue
        if r.status_code == 200:
            lines = r.text.split("\n")
            if len(lines) > 1 and lines[1].isdigit():
                best = max(best, int(lines[1]))
    return best


def wait_committed(n: int, readers: list[Server], watched: list[Server],
                   stall: float = 60.0) -> None:
    """Until a checkpoint covers `n` entries; fail if the size stops moving for `stall` s."""
    last, moved = -1, time.monotonic()
    while True:
        size = checkpoint_size(readers)
        if size >= n:
            return
        if size != last:
            last, moved = size, time.monotonic()
        elif time.monotonic() - moved > stall:
            for s in watched:
                s.check_alive()
            raise watched[0].fail(f"the checkpoint stayed at {size:,} of {n:,} for "
                                  f"{stall:.0f}s")
        for s in watched:
            s.check_alive()
        time.sleep(0.05)


# --- the three ingest runs ----------------------------------------------------------------

def run_sqlite(root: Path, bodies: list[bytes], n: int, clients: int) -> tuple[float, str]:
    """(a): the embedded server; every 201 is a commit (SQLite, synchronous=FULL)."""
    srv = start("sqlite", root / "sqlite" / "data")
    try:
        meter = CpuMeter([srv.proc.pid])
        client_cpu = time.process_time()
        t = time.perf_counter()
        post_all([srv], bodies, clients, {}, {200, 201})
        wall = time.perf_counter() - t
        used = meter.used()
        cpu = (f"  CPU µs/event: server (workers, indexer included) {used / n * 1e6:.1f}, "
               f"clients {(time.process_time() - client_cpu) / n * 1e6:.1f}; "
               f"{used / wall:.2f} of {os.cpu_count()} cores busy in the server")
        return n / wall, cpu
    finally:
        srv.stop()


def run_scale(root: Path, bodies: list[bytes], n: int, clients: int, pg: str, nats_url: str,
              lease_ttl: float, wait: str) -> tuple[float, str]:
    """(b): 2 ingest nodes + 1 sequencer on a fresh schema and a fresh stream."""
    schema = create_schema(pg, "akbench")
    stream = f"AKBENCH{uuid.uuid4().hex[:10].upper()}"
    url = with_schema(pg, schema)
    common = ("--storage", url, "--bus", nats_url, "--bus-stream", stream)
    data = root / "scale" / "data"  # one directory: the deployment's shared keys and token
    servers: list[Server] = []
    try:
        seq = start("sequencer", data, *common, "--role", "sequencer",
                    "--lease-ttl", str(lease_ttl))
        servers.append(seq)
        ingest = [start(f"ingest{i}", data, *common, "--role", "ingest") for i in (1, 2)]
        servers += ingest
        wal0 = wal_lsn(pg)
        seq_cpu, ingest_cpu = CpuMeter([seq.proc.pid]), CpuMeter(s.proc.pid for s in ingest)
        client_cpu = time.process_time()
        t = time.perf_counter()
        post_all(ingest, bodies, clients, {"wait": wait}, {200, 201, 202})
        accepted = time.perf_counter() - t
        wait_committed(n, [*ingest, seq], servers)
        wall = time.perf_counter() - t
        s_used, i_used = seq_cpu.used(), ingest_cpu.used()
        wal = wal_lsn(pg) - wal0
        size = schema_bytes(pg, schema)
        cpu = (f"  all {'accepted' if wait == 'accepted' else 'acked'} after "
               f"{accepted:.2f}s ({n / accepted:,.0f}/s), committed after {wall:.2f}s\n"
               f"  sequencer CPU {s_used / n * 1e6:.1f} µs/event "
               f"({s_used / wall:.2f} cores busy); ingest nodes "
               f"{i_used / n * 1e6:.1f} µs/event = {n / i_used if i_used else 0:,.0f} "
               f"events/s/core; clients {(time.process_time() - client_cpu) / n * 1e6:.1f} "
               f"µs/event\n  PostgreSQL: WAL {wal / n:,.0f} B/event, schema on disk "
               f"{size / n:,.0f} B/event (search index included)")
        return n / wall, cpu
    finally:
        stop_all(reversed(servers))
        drop_schema(pg, schema)
        delete_stream(nats_url, stream)


def canonical_entries(bodies: list[bytes]) -> list[bytes]:
    """The canonical entry bytes the log would store for these events, seq 0, 1, …"""
    from auditkeep.pipeline.prepare import prepare
    from auditkeep.pipeline.validate import decode_events

    out: list[bytes] = []
    for b in bodies:
        for p in prepare(decode_events(b, ndjson=True), tenant="default",
                         submitter="tok_bench", may_set_tenant=False):
            out.append(p.entry(len(out)))
    return out


def run_copy(pg: str, entries: list[bytes], batch: int) -> tuple[float, float, str]:
    """(c): COPY the entries into (seq bigint, entry bytea): events/s with one commit per
    `batch` rows, and with one commit for all."""
    import psycopg
    from psycopg import sql

    schema = create_schema(pg, "akfloor")
    try:
        with psycopg.connect(with_schema(pg, schema)) as conn:
            rates = []
            wal = 0
            for per in (batch, len(entries)):
                table = sql.Identifier(f"floor_{per}")
                conn.execute(sql.SQL("CREATE TABLE {} (seq bigint, entry bytea)").format(
                    table))
                conn.commit()
                copy = sql.SQL("COPY {} (seq, entry) FROM STDIN (FORMAT BINARY)").format(
                    table)
                wal0 = wal_lsn(pg)
                t = time.perf_counter()
                with conn.cursor() as cur:
                    for i in range(0, len(entries), per):
                        with cur.copy(copy) as cp:
                            cp.set_types(["int8", "bytea"])
                            for seq in range(i, min(i + per, len(entries))):
                                cp.write_row((seq, entries[seq]))
                        conn.commit()
                rates.append(len(entries) / (time.perf_counter() - t))
                if per == batch:
                    wal = wal_lsn(pg) - wal0
        size = schema_bytes(pg, schema) / 2
        note = (f"  WAL {wal / len(entries):,.0f} B/event, table {size / len(entries):,.0f} "
                f"B/event")
        return rates[0], rates[1], note
    finally:
        drop_schema(pg, schema)


def ingest_main(args: argparse.Namespace) -> None:
    n, batch = args.events, args.batch
    evs = with_ids(events(n), seed=13)
    bodies = bodies_of(evs, batch)
    entries = canonical_entries(bodies)
    print(f"events: {n:,} in {len(bodies):,} requests of {batch:,}, {args.clients} clients; "
          f"mean canonical entry {sum(map(len, entries)) / n:.0f} B", flush=True)
    root = scratch("scale")
    only = set(args.only.split(","))
    floor = sqlite_rate = 0.0
    if "copy" in only:
        floor, floor_all, note = run_copy(args.pg, entries, batch)
        report(f"(c) PostgreSQL COPY, commit per {batch:,}", floor, "events/s", "itself",
               floor)
        report("(c) PostgreSQL COPY, one commit", floor_all, "events/s",
               f"COPY per {batch:,}", floor)
        print(note, flush=True)
    if "sqlite" in only:
        sqlite_rate, cpu = run_sqlite(root, bodies, n, args.clients)
        report("(a) embedded SQLite server, HTTP", sqlite_rate, "events/s",
               f"(c) COPY per {batch:,}", floor)
        print(cpu, flush=True)
    if "scale" in only:
        rate, cpu = run_scale(root, bodies, n, args.clients, args.pg, args.nats,
                              args.lease_ttl, args.wait)
        report(f"(b) 2 ingest + 1 sequencer, wait={args.wait}", rate, "events/s",
               f"(c) COPY per {batch:,}", floor)
        report("(b) against (a)", rate, "events/s", "(a) SQLite", sqlite_rate)
        print(cpu, flush=True)


# --- search --------------------------------------------------------------------------

SYLLABLES = ["ka", "to", "mi", "re", "su", "no", "ha", "li", "ve", "do", "ra", "pe", "zu",
             "go", "ni", "fa", "be", "so", "ta", "mu", "ki", "lo", "ze", "wa", "yo"]
WORDS = [a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES[:4]]  # 2,500
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US


def search_events(n: int, span_us: int = 30 * DAY_US) -> tuple[list[dict[str, Any]], int]:
    """`n` events over the last 30 days whose notes hold two words of 2,500 (free text
    with real selectivity); returns them and the first event's time (µs)."""
    rng = random.Random(7)
    step = span_us // n
    base = (int(time.time() * 1e6) - span_us) // HOUR_US * HOUR_US
    out = []
    for i in range(n):
        e = make_event(i, rng, base, step)
        e["metadata"]["note"] = f"{rng.choice(WORDS)} {rng.choice(WORDS)}"
        out.append(e)
    return with_ids(out, seed=17), base


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass
class Shape:
    name: str
    path: str
    params: Callable[[random.Random], dict[str, str]]


def shapes(base: int, span_us: int) -> list[Shape]:
    from common import ACTIONS

    def window(rng: random.Random, width: int) -> tuple[str, str]:
        start = base + rng.randrange((span_us - width) // HOUR_US) * HOUR_US
        return iso(start), iso(start + width)

    def by_actor(rng: random.Random) -> dict[str, str]:
        return {"query": f"actor:user-{rng.randrange(5000)}", "limit": "100"}

    def action_time(rng: random.Random) -> dict[str, str]:
        lo, hi = window(rng, DAY_US)
        return {"query": f"action:{rng.choice(ACTIONS)} AND time:[{lo} TO {hi}}}",
                "limit": "100"}

    def free(rng: random.Random) -> dict[str, str]:
        return {"query": rng.choice(WORDS), "limit": "100"}

    def count_by_action(rng: random.Random) -> dict[str, str]:
        lo, hi = window(rng, 7 * DAY_US)
        return {"query": f"time:[{lo} TO {hi}}}", "group_by": "action", "top": "10"}

    return [Shape("by actor (100 newest)", "/v1/search", by_actor),
            Shape("action + 1-day window", "/v1/search", action_time),
            Shape("free text, one word", "/v1/search", free),
            Shape("count by action, 7 days", "/v1/aggregate", count_by_action)]


def answer(body: dict[str, Any]) -> Any:
    """What two servers must agree on: the ids found, or the counts."""
    if "events" in body:
        return sorted(e["id"] for e in body["events"])
    return body.get("total"), sorted((tuple(g["key"]) if isinstance(g["key"], list)
                                      else g["key"], g["count"])
                                     for g in body.get("groups", []))


def wait_searchable(srv: Server, n: int, timeout: float) -> float:
    t = time.perf_counter()
    with srv.client() as c:
        while time.perf_counter() - t < timeout:
            srv.check_alive()
            r = c.get("/v1/aggregate", params={"query": ""})
            if r.status_code == 200 and r.json().get("total", 0) >= n:
                return time.perf_counter() - t
            time.sleep(1)
    raise srv.fail(f"not all {n:,} events searchable after {timeout:.0f}s")


def search_main(args: argparse.Namespace) -> None:
    n = args.search_events
    span = 30 * DAY_US
    evs, base = search_events(n, span)
    bodies = bodies_of(evs, 1000)
    del evs
    root = scratch("scale-search")
    schema = create_schema(args.pg, "aksearch")
    stream = f"AKSEARCH{uuid.uuid4().hex[:10].upper()}"
    servers: list[Server] = []
    try:
        lite = start("sqlite", root / "sqlite" / "data")
        servers.append(lite)
        pgs = start("pg-all", root / "pg" / "data", "--storage",
                    with_schema(args.pg, schema), "--bus", args.nats, "--bus-stream", stream,
                    "--role", "all", "--lease-ttl", str(args.lease_ttl))
        servers.append(pgs)
        for srv in (lite, pgs):
            t = time.perf_counter()
            post_all([srv], bodies, args.clients, {}, {200, 201})
            load = time.perf_counter() - t
            idx = wait_searchable(srv, n, args.index_timeout)
            print(f"{srv.name}: loaded {n:,} over HTTP at {n / load:,.0f}/s, all searchable "
                  f"{idx:.0f}s after the last ack", flush=True)
        print(f"{'shape':<28} {'PostgreSQL p50 / p95':>24} {'SQLite p50 / p95':>22}  "
              f"ratio p95 (PG/SQLite)")
        rng = random.Random(3)
        with lite.client() as lc, pgs.client() as pc:
            for shape in shapes(base, span):
                lat: dict[str, list[float]] = {"pg": [], "lite": []}
                differ = 0
                for k in range(args.samples + 3):  # 3 warm-up samples, not counted
                    params = shape.params(rng)
                    got = []
                    for key, c in (("pg", pc), ("lite", lc)) if k % 2 else (
                            ("lite", lc), ("pg", pc)):
                        t = time.perf_counter()
                        r = c.get(shape.path, params=params)
                        dt = time.perf_counter() - t
                        if r.status_code != 200:
                            raise SystemExit(f"{key} {shape.path} {params}: {r.status_code} "
                                             f"{r.text[:300]}")
                        got.append(answer(r.json()))
                        if k >= 3:
                            lat[key].append(dt)
                    differ += got[0] != got[1]
                pg50, pg95, _ = percentiles(lat["pg"])
                l50, l95, _ = percentiles(lat["lite"])
                flag = f"  RESULTS DIFFER in {differ} samples" if differ else ""
                print(f"{shape.name:<28} {pg50 * 1e3:>10.1f} / {pg95 * 1e3:>7.1f} ms "
                      f"{l50 * 1e3:>9.1f} / {l95 * 1e3:>7.1f} ms  {pg95 / l95:>6.2f}{flag}",
                      flush=True)
    finally:
        stop_all(servers)
        drop_schema(args.pg, schema)
        delete_stream(args.nats, stream)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=500, help="events a request (and COPY)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--nats", default="nats://127.0.0.1:4222")
    ap.add_argument("--lease-ttl", type=float, default=5.0)
    ap.add_argument("--wait", choices=["accepted", "committed"], default="accepted",
                    help="the ingest nodes' acknowledgement mode in (b)")
    ap.add_argument("--only", default="sqlite,scale,copy",
                    help="comma-separated runs: sqlite (a), scale (b), copy (c)")
    ap.add_argument("--search", action="store_true", help="the search comparison instead")
    ap.add_argument("--search-events", type=int, default=1_000_000)
    ap.add_argument("--samples", type=int, default=30, help="samples a search shape")
    ap.add_argument("--index-timeout", type=float, default=7200.0,
                    help="seconds to wait for a server's index to catch up")
    args = ap.parse_args()
    unknown = set(args.only.split(",")) - {"sqlite", "scale", "copy"}
    if unknown:
        ap.error(f"--only: unknown run(s) {', '.join(sorted(unknown))}; "
                 "expected sqlite, scale, copy")
    if args.search:
        search_main(args)
    else:
        ingest_main(args)


if __name__ == "__main__":
    main()
