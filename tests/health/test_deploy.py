"""deploy/: every Grafana dashboard is dashboard JSON with a Prometheus datasource
variable, and every PromQL expression in it and in the Prometheus rules names only
metrics that /metrics exports; every rule links an existing runbook."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from auditkeep.datadir import DataDir, open_node
from auditkeep.detect.service import Detection
from auditkeep.health.slo import SloEvaluator
from auditkeep.pipeline.config_ops import DEFAULT_SLOS
from auditkeep.privacy.scan import PiiScanJob
from auditkeep.server.app import create_app

ROOT = Path(__file__).resolve().parents[2]
METRIC = re.compile(r"\bauditkeep_[a-z0-9_]+")
DASHBOARDS = sorted((ROOT / "deploy" / "grafana").glob("*.json"))
RULES = ROOT / "deploy" / "prometheus" / "auditkeep-alerts.yml"


class _Each(Collector):
    """A registrable face for a collector object that is not hashable (a dataclass)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def collect(self) -> Iterator[Metric]:
        yield from self._inner.collect()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Sample names /metrics can carry: counters' _total, histograms' _bucket/_sum/_count."""
    slis_mod = pytest.importorskip("auditkeep.health.slis")
    tmp = tmp_path_factory.mktemp("deploy")
    rules = tmp / "rules"
    rules.mkdir()
    n = open_node(DataDir(tmp / "data"), indexer="thread")
    try:
        n.options["detection"] = Detection(n.store, n.logs, rules)
        n.options["pii_scan"] = PiiScanJob(n.store, interval=3600)  # never started
        n.options["slo"] = SloEvaluator(DEFAULT_SLOS, {s.name: lambda: (1.0, 1.0)
                                                       for s in DEFAULT_SLOS},
                                        lambda **kw: None)
        reg = create_app(n).state.registry  # the app adds the pipelines' counters
        extra = CollectorRegistry()
        extra.register(_Each(n.options.get("slis") or slis_mod.Slis()))
        text = (generate_latest(reg) + generate_latest(extra)).decode()
    finally:
        n.close()
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "histogram":
                names.update(f"{name}{s}" for s in ("_bucket", "_sum", "_count"))
    return names


def test_there_is_a_dashboard() -> None:
    assert DASHBOARDS


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_names_only_exported_metrics(path: Path, exported: set[str]) -> None:
    d = json.loads(path.read_text())
    assert d["title"] and d["uid"] and isinstance(d["schemaVersion"], int)
    (var,) = [v for v in d["templating"]["list"] if v["type"] == "datasource"]
    assert var["query"] == "prometheus"
    exprs = [t["expr"] for p in d["panels"] for t in p["targets"]]
    assert exprs
    for p in d["panels"]:
        assert p["datasource"]["uid"] == "${" + var["name"] + "}"
    for e in exprs:
        unknown = set(METRIC.findall(e)) - exported
        assert not unknown, f"{path.name}: {e} names {unknown}"


def test_prometheus_rules_name_exported_metrics_and_runbooks(exported: set[str]) -> None:
    doc = yaml.safe_load(RULES.read_text())
    rules = [r for g in doc["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} == {"AuditkeepSloFastBurn", "AuditkeepSloSlowBurn",
                                           "AuditkeepSloBudgetBurn", "AuditkeepCanaryFailing",
                                           "AuditkeepIntegrityFailure", "AuditkeepStorageFull"}
    for r in rules:
        assert not set(METRIC.findall(r["expr"])) - exported, r["alert"]
        url = r["annotations"]["runbook_url"]
        page = url.split("/docs/", 1)[1]
        assert (ROOT / "docs" / page).is_file(), url
