"""System alerts take the detection alert path: stored, routed by alerting.yaml to a
real webhook receiver, delivered, appended to the tenant's log, grouped on repeat."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from auditkeep.datadir import DataDir, Node, open_node
from auditkeep.detect.alerts import ALERT_ACTION
from auditkeep.detect.service import Detection
from auditkeep.health.alerts import SYSTEM_ORIGIN, raise_system_alert
from tests.receivers import Receiver

ALERTING = """
sinks:
  hook: {type: webhook, url: URL}
routes:
  - match: {rules: [auditkeep.slo.*], levels: [critical]}
    sinks: [hook]
"""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([])
    yield r
    r.close()


@pytest.fixture
def detected(tmp_path: Path, receiver: Receiver) -> Iterator[Node]:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "alerting.yaml").write_text(ALERTING.replace("URL", receiver.url))
    n = open_node(DataDir(tmp_path / "data"), indexer="none")
    n.options["detection"] = Detection(n.store, n.logs, rules)
    n.start(compact=False)
    yield n
    n.close()


def wait_for(check: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


class TestRaiseSystemAlert:
    def test_stored_routed_delivered_logged_and_grouped(self, detected: Node,
                                                        receiver: Receiver) -> None:
        n = detected
        rec = raise_system_alert(n, rule="auditkeep.slo.searchable.1h", level="critical",
                                 title="searchable burning fast",
                                 details={"burn_rate": 20.0}, dedup="searchable")
        assert rec is not None
        stored = n.store.alerts("default")
        assert [a.id for a in stored] == [rec.id]
        body = orjson.loads(stored[0].body)
        assert body["origin"] == SYSTEM_ORIGIN and body["routes"] == ["hook"]
        assert wait_for(lambda: len(receiver.posts) == 1)
        assert orjson.loads(receiver.posts[0][1])["alert"]["rule"] == \
            "auditkeep.slo.searchable.1h"
        assert wait_for(lambda: n.store.get_alert("default", rec.id).logged_seq is not None)
        seq = n.store.get_alert("default", rec.id).logged_seq
        info = next(i for i in n.store.list_logs() if i.name == "default")
        (bundle,) = n.store.read_bundles(info.id, seq, seq + 1)
        entry = orjson.loads(bundle.entries[seq - bundle.first_seq])
        assert entry["action"] == ALERT_ACTION and entry["id"] == rec.id
        assert wait_for(lambda: n.store.deliveries("default")[0].status == "delivered")

        again = raise_system_alert(n, rule="auditkeep.slo.searchable.1h", level="critical",
                                   title="searchable burning fast",
                                   details={"burn_rate": 30.0}, dedup="searchable")
        assert again is None  # folded into the open alert
        (only,) = n.store.alerts("default")
        grouped = orjson.loads(only.body)
        assert grouped["count"] == 2 and grouped["details"] == {"burn_rate": 30.0}
        assert len(n.store.deliveries("default")) == 1

    def test_unrouted_level_is_stored_but_not_delivered(self, detected: Node) -> None:
        rec = raise_system_alert(detected, rule="auditkeep.slo.ingest.3d", level="medium",
                                 title="ticket", details={})
        assert rec is not None and detected.store.deliveries("default") == []

    def test_without_detection_the_record_is_logged_here(self, node: Node) -> None:
        rec = raise_system_alert(node, rule="auditkeep.canary", level="high", title="t",
                                 details={}, tenant="default")
        assert rec is not None
        assert node.store.get_alert("default", rec.id).logged_seq is not None

    def test_unknown_level_is_refused(self, node: Node) -> None:
        with pytest.raises(ValueError, match="level"):
            raise_system_alert(node, rule="r", level="page", title="t", details={})
