"""Sources: events/s of each source's decode + map (no storage) against plain `json.loads`
of the same bytes, and end to end through a real server. Same run, same samples.
Target: mapping costs at most 3x the baseline parse for Kubernetes and CloudTrail."""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from auditkeep.datadir import DataDir
from auditkeep.sources import cloudtrail, gcp, otlp
from auditkeep.sources.k8s import K8sEventMapper
from auditkeep.sources.syslog import map_message
from common import ROOT, report, scratch

DATA = ROOT / "tests" / "data"


def rate(fn: Callable[[bytes], Any], items: list[bytes], min_seconds: float = 1.0) -> float:
    """Items/s of `fn` over `items`, repeated until `min_seconds` have passed."""
    done = 0
    t = time.perf_counter()
    while True:
        for it in items:
            fn(it)
        done += len(items)
        elapsed = time.perf_counter() - t
        if elapsed >= min_seconds:
            return done / elapsed


def k8s_lines() -> list[bytes]:
    lines = []
    for name in ("falco_k8s_audit_events.jsonl", "panther_k8s_audit_events_part.jsonl"):
        lines += [ln for ln in (DATA / "k8s" / name).read_bytes().splitlines() if ln.strip()]
    return lines


def cloudtrail_records() -> list[bytes]:
    out: list[bytes] = []
    for name in ("stratus_records.json", "panther_cloudtrail_records_part.json"):
        out += [raw for raw, _ in cloudtrail.decode_log_file(
            (DATA / "cloudtrail" / name).read_bytes())]
    return out


def gcp_entries() -> list[bytes]:
    out: list[bytes] = []
    for name in ("activity.jsonl", "data_access.jsonl"):
        out += [raw for _, raw, _ in gcp.decode_export((DATA / "gcp" / name).read_bytes())]
    return out


def otlp_body() -> bytes:
    return (DATA / "otlp" / "export_mixed.json").read_bytes()


def syslog_lines() -> list[bytes]:
    return [
        b'<134>1 2026-11-29T04:05:06.123456+01:00 web-1 billing 4242 ORDER_DEL [audit@32473 '
        b'action="orders.delete" actor="alice" outcome="success" resource.type="order" '
        b'resource.id="42"] deleted order 42',
        b"<38>Nov 29 04:05:06 bastion sshd[811]: Accepted publickey for bob from 10.1.2.3",
        b"<86>Nov 29 04:05:07 bastion sudo: carol : TTY=pts/0 ; PWD=/ ; COMMAND=/bin/ls",
    ]


def mapping_rates() -> None:
    k8s = K8sEventMapper(stages=None)  # map every stage: the cost of mapping, not filtering
    cases: list[tuple[str, list[bytes], Callable[[bytes], Any], str]] = [
        ("kubernetes audit", k8s_lines(), lambda b: k8s(orjson.loads(b)), "<= 3x parse"),
        ("aws cloudtrail", cloudtrail_records(),
         lambda b: cloudtrail.map_record(orjson.loads(b)), "<= 3x parse"),
        ("google cloud audit", gcp_entries(), lambda b: gcp.map_log_entry(orjson.loads(b)), ""),
        ("otlp json (a whole export)", [otlp_body()],
         lambda b: otlp.map_logs(otlp.decode_request(b, "application/json")), ""),
        ("syslog (RFC 5424/3164)", syslog_lines(), map_message, ""),
    ]
    for name, items, fn, target in cases:
        base = rate(json.loads, items) if name != "syslog (RFC 5424/3164)" else rate(
            lambda b: json.loads(orjson.dumps(b.decode("latin-1"))), items)
        mapped = rate(fn, items)
        unit = "exports/s" if name.startswith("otlp") else "events/s"
        report(f"{name}: decode + map", mapped, unit, "json.loads of the same bytes",
               base, target)
        print(f"    cost: {base / mapped:.2f}x the baseline parse", flush=True)


def end_to_end(n: int) -> None:
    from tests.conftest import start_server

    srv = start_server(DataDir(scratch("sources-server") / "data"))
    try:
        items = [orjson.loads(b) for b in k8s_lines()]
        items = [i for i in items if i.get("auditID")]
        lists = []
        for start in range(0, n, 500):
            batch = [dict(items[(start + j) % len(items)], auditID=f"bench-{start + j}",
                          stage="ResponseComplete") for j in range(min(500, n - start))]
            lists.append(orjson.dumps({"kind": "EventList", "items": batch}))
        with httpx.Client(base_url=srv.url, timeout=120,
                          headers={"Authorization": f"Bearer {srv.admin_token}"}) as c:
            t = time.perf_counter()
            for body in lists:
                r = c.post("/v1/sources/k8s", content=body)
                r.raise_for_status()
            k8s_rate = n / (time.perf_counter() - t)
            plain = [orjson.dumps([{"action": "k8s.x.get", "outcome": "success",
                                    "actor": {"id": "u", "type": "user"},
                                    "id": f"plain-{s + j}"} for j in range(500)])
                     for s in range(0, n, 500)]
            t = time.perf_counter()
            for body in plain:
                c.post("/v1/events", content=body).raise_for_status()
            plain_rate = n / (time.perf_counter() - t)
        report("kubernetes webhook end to end (500/list)", k8s_rate, "events/s",
               "POST /v1/events of small schema v1 events", plain_rate)
    finally:
        srv.stop()


def main() -> None:
    gc.set_threshold(50_000, 20, 100)
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)
    args = ap.parse_args()
    mapping_rates()
    end_to_end(args.events)


if __name__ == "__main__":
    main()
