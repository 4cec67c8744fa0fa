"""Detection throughput with 10 / 100 / 500 active rules, and alert latency at 10,000
events/s with 100 rules.

    python bench/detect.py [--events 50000] [--rules 10,100,500] [--no-latency]

Rules are a realistic mix (bench_rules): most test an action or a few (as the shipped
rules and most Sigma rules do), some a wildcard or several fields, some are thresholds
and new-value rules; events are bench/common.py's with actions drawn from 1,000.

- **engine**: `Engine.run_once` over a real SQLite log until caught up: read bundles and
  raws, parse, dispatch, evaluate, window state, alerts and one `detect_commit` a pass.
- **evaluator**: the same rules fed the same parsed events in memory (no storage).
- **baseline (same run)**: the same rules' compiled predicates (`rule.matcher`) called
  for every event and every rule in a bare loop, as a naive engine would.
- **latency**: a real log appended at 10,000 events/s (one commit every 10 ms) while the
  engine thread follows it; each alert's latency is stored - received of its event.
  Baseline: the commit latency (submit -> durable) of the same appends.
Target: p95 <= 2 s.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))
from auditkeep.datadir import DataDir, open_node
from auditkeep.detect.alerts import Alert
from auditkeep.detect.engine import Engine
from auditkeep.detect.evaluator import Evaluator
from auditkeep.detect.ruleset import RuleSet, RuleSource, load_text
from auditkeep.detect.view import EventView
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.validate import decode_events
from common import events, percentiles, report, scratch

SERVICES = [f"svc{i}" for i in range(50)]
VERBS = ["create", "read", "update", "delete", "export", "login", "grant", "revoke",
         "rotate", "share", "approve", "reject", "sync", "import", "purge", "restore",
         "archive", "invite", "suspend", "enable"]
ACTIONS = [f"{s}.{v}" for s in SERVICES for v in VERBS]  # 1,000


def bench_rules(n: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    lines = ["rules:"]
    for i in range(n):
        r = i % 10
        a, b = rng.choice(ACTIONS), rng.choice(ACTIONS)
        if r < 6:
            q = f"action:{a} outcome:success" if r % 2 else f"(action:{a} OR action:{b})"
            lines.append(f"  - {{id: r{i}, query: '{q}', group_by: [actor.id]}}")
        elif r == 6:
            lines.append(f"  - {{id: r{i}, query: 'action:{a.split('.')[0]}.* outcome:denied',"
                         " group_by: [actor.id]}")
        elif r == 7:
            lines.append(f"  - {{id: r{i}, kind: threshold, query: 'action:{a}', "
                         "group_by: [actor.id], window: 10m, count: '> 3'}")
        elif r == 8:
            lines.append(f"  - {{id: r{i}, kind: new_value, query: 'action:{a}', "
                         "fields: [actor.id, action]}")
        else:
            lines.append(f"  - {{id: r{i}, query: 'category:admin outcome:failure "
                         f"source.service:{rng.choice(SERVICES)}'}}")
    return "\n".join(lines) + "\n"


def bench_events(n: int, seed: int = 3) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out = events(n, seed=seed)
    for e in out:
        e["action"] = rng.choice(ACTIONS)
        e["actor"] = {"id": f"user-{rng.randrange(5000)}", "type": "user"}
    return out


def records(evs: list[dict[str, object]]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for i in range(0, len(evs), 1000):
        decoded = decode_events(orjson.dumps(evs[i:i + 1000]), ndjson=False)
        pend = prepare(decoded, tenant="default", submitter="bench", may_set_tenant=False)
        out.extend(dict(p.fields, seq=len(out) + j) for j, p in enumerate(pend))
    return out


def in_memory(rules_text: str, recs: list[dict[str, object]]) -> tuple[float, float, int]:
    rs = RuleSet([load_text(rules_text, "bench.yml")])
    # baseline: every compiled predicate for every event
    views = [EventView(r, log="default", seq=i) for i, r in enumerate(recs)]
    t = time.perf_counter()
    hits = 0
    for v in views:
        for rule in rs.active:
            if rule.matcher(v):
                hits += 1
    bare = len(views) / (time.perf_counter() - t)
    ev = Evaluator(rs)
    views = [EventView(r, log="default", seq=i) for i, r in enumerate(recs)]
    t = time.perf_counter()
    fired = 0
    for v in views:
        fired += len(ev.feed(v, "default"))
    fast = len(views) / (time.perf_counter() - t)
    return fast, bare, fired


def engine_rate(root: Path, rules_text: str, evs: list[dict[str, object]]) -> float:
    n = open_node(DataDir(root / "data"), with_index=False)
    try:
        for i in range(0, len(evs), 1000):
            decoded = decode_events(orjson.dumps(evs[i:i + 1000]), ndjson=False)
            n.logs.append("default", prepare(decoded, tenant="default", submitter="b",
                                             may_set_tenant=False)).result()
        rules = root / "rules"
        rules.mkdir()
        (rules / "bench.yml").write_text(rules_text)
        (rules / "alerting.yaml").write_text("group_window: 10m\n")
        e = Engine(n.store, RuleSource(rules))
        t = time.perf_counter()
        while e.run_once():
            pass
        return e.evaluated / (time.perf_counter() - t)
    finally:
        n.close()


def latency(root: Path, rules_text: str, seconds: float, rate: int) -> None:
    n = open_node(DataDir(root / "data"), with_index=False)
    rules = root / "rules"
    rules.mkdir()
    (rules / "bench.yml").write_text(rules_text)
    (rules / "alerting.yaml").write_text("group_window: 0s\n")
    e = Engine(n.store, RuleSource(rules), idle_wait=0.05)
    n.logs.on_commit(e.notify)
    e.start()
    commit_lat: list[float] = []
    pool = bench_events(20_000, seed=11)
    try:
        per = rate // 100
        t0 = time.perf_counter()
        k = 0
        while time.perf_counter() - t0 < seconds:
            batch = [dict(pool[(k + j) % len(pool)]) for j in range(per)]
            for b in batch:
                b.pop("time", None)  # now: times as live ingest makes them
            k += per
            decoded = decode_events(orjson.dumps(batch), ndjson=False)
            s = time.perf_counter()
            fut = n.logs.append("default", prepare(decoded, tenant="default", submitter="b",
                                                   may_set_tenant=False))
            fut.add_done_callback(lambda _f, s=s: commit_lat.append(time.perf_counter() - s))
            sleep = t0 + (k / rate) - time.perf_counter()
            if sleep > 0:
                time.sleep(sleep)
        sent = k / (time.perf_counter() - t0)
        e.wait_caught_up(60)
        lat = [a.details["latency_s"] for a in
               (Alert.of(r) for r in n.store.alerts("default", limit=100_000))
               if "latency_s" in a.details]
        p50, p95, _ = percentiles(lat)
        b50, b95, _ = percentiles(commit_lat)
        print(f"alert latency at {sent:,.0f} ev/s, 100 rules: p50 {p50 * 1e3:.0f} ms  "
              f"p95 {p95 * 1e3:.0f} ms over {len(lat)} alerts   baseline commit latency: "
              f"p50 {b50 * 1e3:.0f} ms  p95 {b95 * 1e3:.0f} ms   target p95 <= 2,000 ms",
              flush=True)
    finally:
        e.stop()
        n.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--rules", default="10,100,500")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--no-latency", action="store_true")
    args = ap.parse_args()
    evs = bench_events(args.events)
    recs = records(evs)
    for count in (int(x) for x in args.rules.split(",")):
        text = bench_rules(count)
        fast, bare, fired = in_memory(text, recs)
        report(f"evaluator, {count} rules ({fired} firings)", fast, "ev/s",
               "bare predicate loop", bare)
        rate = engine_rate(scratch(f"detect-{count}"), text, evs)
        report(f"engine (SQLite, state, alerts), {count} rules", rate, "ev/s",
               "bare predicate loop", bare, ">= 10,000 ev/s")
    if not args.no_latency:
        latency(scratch("detect-latency"), bench_rules(100), args.seconds, 10_000)


if __name__ == "__main__":
    main()
