"""A real SQLite data directory with a few sealable ranges, and an archive beside it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from auditkeep.archive.objects import Objects, open_objects
from auditkeep.archive.seal import Archiver
from auditkeep.datadir import DataDir, Node, open_node
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.schema import Event

TENANT = "acme"
WIDTH = 256


def ev(i: int, **more: Any) -> dict[str, Any]:
    return {"action": "orders.view" if i % 3 else "orders.delete", "outcome": "success",
            "time": f"2026-01-{1 + i // 100:02d}T00:00:{i % 60:02d}.{i:06d}Z",
            "actor": {"id": f"user-{i % 5}", "type": "user", "email": f"u{i}@example.org"},
            "resource": {"type": "order", "id": str(i)}, "source": {"service": "shop"},
            "metadata": {"n": i}, **more}


def ingest(n: Node, events: list[dict[str, Any]], tenant: str = TENANT) -> None:
    decoded = msgspec.convert(events, list[Event])
    for i in range(0, len(decoded), 200):
        pendings = prepare(decoded[i:i + 200], tenant=tenant, submitter="test",
                           may_set_tenant=False)
        n.logs.append(tenant, pendings).result()


def filled_node(root: Path, *, with_index: bool) -> Node:
    """600 events in `acme` (two whole ranges of 256 and a tail), checkpointed."""
    n = open_node(DataDir(root), sequencer_options={"checkpoint_interval": 0.0},
                  with_index=with_index)
    n.start()
    ingest(n, [ev(i) for i in range(600)])
    assert n.indexer is None or n.indexer.wait_caught_up()
    return n


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[Node]:
    n = filled_node(tmp_path / "data", with_index=False)
    yield n
    n.close()


@pytest.fixture
def indexed(tmp_path: Path) -> Iterator[Node]:
    n = filled_node(tmp_path / "data", with_index=True)
    yield n
    n.close()


@pytest.fixture
def objects(tmp_path: Path) -> Objects:
    return open_objects(str(tmp_path / "archive"))


@pytest.fixture
def archiver(filled: Node, objects: Objects) -> Archiver:
    return Archiver(filled.logs, objects, WIDTH)
