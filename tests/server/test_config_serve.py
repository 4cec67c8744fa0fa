"""`auditkeep serve --config FILE`: sources switched, stages run per tenant, generic
mappings served, and a bad file stops the server with every problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from auditkeep.datadir import DataDir
from tests.conftest import start_server
from tests.server.helpers import event, size_of

CONFIG = """
sources:
  cloudtrail: {enabled: false}
  generic:
    - name: github
      map:
        id: /delivery_id
        action: /action
        actor.id: /sender/login
        actor.type: {const: user}
        outcome: {const: success}
        resource.type: {const: repo}
        resource.id: /repository/full_name
pipeline:
  - enrich: {static: {source.environment: prod}}
  - sample: {rate: 0.0, actions: ["noise.*"]}
tenants:
  quiet:
    extends: none
    pipeline: []
"""


def test_a_configured_server_runs_its_pipeline(data_dir: DataDir, tmp_path: Path) -> None:
    cfg = tmp_path / "auditkeep.yaml"
    cfg.write_text(CONFIG)
    srv = start_server(data_dir, "--config", str(cfg))
    try:
        with srv.client() as c:
            r = c.post("/v1/events", json=[event(1, id="keep-1"), event(2, id="noise-1",
                                                                        action="noise.tick"),
                                           event(3, id="crit-1", action="noise.alarm",
                                                 severity="critical")])
            assert r.status_code == 201, r.text
            assert r.json()["dropped"] == 1  # sampled away, counted; critical kept
            assert [x["id"] for x in r.json()["receipts"]] == ["keep-1", "crit-1"]
            kept = c.get("/v1/events/keep-1").json()["record"]
            assert kept["source"]["environment"] == "prod"
            # a tenant that opts out of the global stages
            r = c.post("/v1/events", params={"tenant": "quiet"},
                       json=event(4, id="quiet-1", action="noise.tick"))
            assert r.status_code == 201
            assert "source" not in c.get("/v1/events/quiet-1",
                                         params={"tenant": "quiet"}).json()["record"]
            # sources: cloudtrail is off, the generic mapping is served
            assert c.post("/v1/sources/cloudtrail", content=b'{"Records":[]}').status_code == 404
            hook = {"delivery_id": "d-1", "action": "repo.push", "sender": {"login": "octo"},
                    "repository": {"full_name": "acme/site"}}
            r = c.post("/v1/sources/generic/github", content=orjson.dumps(hook))
            assert r.status_code == 201, r.text
            rec = c.get("/v1/events/d-1").json()["record"]
            assert rec["actor"]["id"] == "octo" and rec["resource"]["id"] == "acme/site"
            assert rec["raw"]["format"] == "generic.github"
            assert c.get("/v1/events/d-1/raw").content == orjson.dumps(hook)
            bad = c.post("/v1/sources/generic/github", content=b'{"action": "x.y"}')
            assert bad.status_code == 400 and bad.json()["errors"][0]["pointer"].startswith("/0")
            assert size_of(c) == 3
    finally:
        srv.stop()


def test_a_bad_file_stops_the_server_naming_every_problem(data_dir: DataDir,
                                                          tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("pipeline:\n  - sample: {rate: 7}\n  - shout: {}\nsources: {k8s: 3}\n")
    res = subprocess.run([sys.executable, "-m", "auditkeep", "serve", "--data",
                          str(data_dir.root), "--config", str(cfg), "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert "pipeline[0].sample.rate" in res.stderr and "pipeline[1]" in res.stderr
    assert "sources.k8s" in res.stderr and "Traceback" not in res.stderr
    assert not data_dir.root.exists()  # checked before anything was created
