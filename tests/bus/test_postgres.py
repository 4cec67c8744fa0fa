"""The deployment's shape: PostgreSQL, two ingest nodes, two sequencer processes."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson

from auditkeep.bus import BusAppender, BusSequencers
from auditkeep.bus.client import Bus
from auditkeep.log.keys import KeyRing
from auditkeep.log.service import LogService
from auditkeep.storage.base import Backend
from auditkeep.storage.postgres import PostgresBackend
from tests.bus.conftest import eventually
from tests.log.test_sequencer import pendings


def service(url: str, keys: Path) -> LogService:
    store = PostgresBackend(url)
    ring = KeyRing(store, keys)
    ring.ensure()
    return LogService(store, ring, origin_prefix="bus.test")


def ids_in(store: Backend, name: str) -> list[str]:
    info = store.get_log(name)
    assert info is not None
    return [orjson.loads(e)["id"] for b in store.read_bundles(info.id, 0, info.size)
            for e in b.entries]


def test_two_ingest_nodes_and_two_sequencers_commit_every_event_once(
        pg_url: str, make_bus: Callable[..., Bus], tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    nodes = [service(pg_url, keys) for _ in range(4)]
    ingest = [BusAppender(make_bus(), n.store, origin=n.origin, reply_wait=1.0)
              for n in nodes[:2]]
    seqs = [BusSequencers(make_bus(), n, f"seq-{i}:1", lease_ttl=1.0, scan_interval=0.05)
            for i, n in enumerate(nodes[2:])]
    for s in seqs:
        s.start()
    try:
        batches = [(f"t{k % 3}", pendings(1 + k % 4)) for k in range(40)]
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(
                lambda kb: ingest[kb[0] % 2].append(*kb[1]).result(60), enumerate(batches)))
        store = nodes[0].store
        for name in ("t0", "t1", "t2"):
            sent = [p.id for n, b in batches if n == name for p in b]
            stored = ids_in(store, name)
            assert sorted(stored) == sorted(sent) and len(set(stored)) == len(stored)
        for (name, _), result in zip(batches, results, strict=True):
            info = store.get_log(name)
            assert info is not None
            leaves = store.read_nodes(info.id, [(0, r.seq) for r in result.receipts])
            assert leaves == [r.leaf_hash for r in result.receipts]
        # Each log has one leader; stopping it hands its logs to the other.
        led = [set(s.leading()) for s in seqs]
        assert led[0] | led[1] == {"t0", "t1", "t2"} and not led[0] & led[1]
        seqs[0].stop()
        eventually(lambda: set(seqs[1].leading()) == {"t0", "t1", "t2"}, timeout=15)
        more = ingest[0].append("t0", pendings(2)).result(60)
        assert [r.id for r in more.receipts] == ids_in(store, "t0")[-2:]
    finally:
        for s in seqs:
            s.stop()
        for a in ingest:
            a.close()
        for n in nodes:
            n.close()
            n.store.close()
