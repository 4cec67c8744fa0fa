"""The agent loop against a stand-in for the SDK client: ids, counters, spool-full
pauses, restarts, status.json and metrics."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from auditkeep.agent.config import AgentConfig, FileConfig
from auditkeep.agent.runner import Agent, line_id
from auditkeep.client.events import encode_event
from auditkeep.errors import ConfigError, SpoolFull
from tests.conftest import free_port

K8S_SAMPLES = Path(__file__).parent.parent / "data" / "k8s" / "falco_k8s_audit_events.jsonl"


class FakeClient:
    """`emit_event` and `stats` as AuditClient has them; checks events the same way."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.full = False
        self.synced = 0  # how many events had been emitted at the last `sync`

    def emit_event(self, event: dict[str, Any]) -> str:
        if self.full:
            raise SpoolFull("the audit spool stayed full")
        encode_event(event)  # raises EventError as the real client does
        self.events.append(event)
        return str(event["id"])

    def sync(self) -> None:
        self.synced = len(self.events)

    def stats(self) -> dict[str, Any]:
        return {"emitted": len(self.events), "sent": len(self.events) - 1, "retried": 3,
                "spooled_bytes": 42, "dropped": 0, "pending": 1, "last_error": None}

    @property
    def ids(self) -> list[str]:
        return [str(e["id"]) for e in self.events]


def event(i: int, **over: Any) -> dict[str, Any]:
    return {"action": "app.x", "actor": {"id": f"u{i}", "type": "user"}, "outcome": "success",
            **over}


def jline(obj: Any) -> bytes:
    return orjson.dumps(obj) + b"\n"


def config(tmp_path: Path, *files: FileConfig, **over: Any) -> AgentConfig:
    return AgentConfig(url="http://127.0.0.1:1", token="ak_x", state_dir=tmp_path / "state",
                       files=files, **over)


def run_until_idle(agent: Agent) -> None:
    while agent.step():
        pass
    agent.tick(force=True)


class TestJsonLines:
    def test_ids_are_the_events_own_or_derived_from_the_line(self, tmp_path: Path) -> None:
        log = tmp_path / "app.jsonl"
        lines = [jline(event(0, id="own-0")), jline(event(1)), jline(event(2, id="own-2"))]
        log.write_bytes(b"".join(lines))
        sink = FakeClient()
        agent = Agent(config(tmp_path, FileConfig(log, "json", None, "beginning")), sink)
        run_until_idle(agent)
        agent.close()
        assert sink.ids == ["own-0", line_id(lines[1][:-1]), "own-2"]
        assert sink.ids[1].startswith("agent:") and len(sink.ids[1]) == 6 + 32
        assert agent.counters.read == 3 and agent.counters.events == 3

    def test_offsets_are_saved_only_after_the_spool_is_synced(self, tmp_path: Path) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(b"".join(jline(event(i)) for i in range(5)))
        sink = FakeClient()
        agent = Agent(config(tmp_path, FileConfig(log, "json", None, "beginning")), sink)
        run_until_idle(agent)
        assert sink.synced == 5
        saved = orjson.loads((tmp_path / "state" / "offsets.json").read_bytes())
        assert next(iter(saved.values()))["offset"] == log.stat().st_size
        agent.close()

    def test_invalid_lines_are_counted_and_logged_and_never_stop_the_agent(
            self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(jline(event(0)) + b"{not json\n" + b"[1]\n" + b"\n"
                        + jline({"action": "x", "outcome": "success"}) + jline(event(5)))
        sink = FakeClient()
        agent = Agent(config(tmp_path, FileConfig(log, "json", None, "beginning")), sink)
        with caplog.at_level(logging.WARNING, "auditkeep.agent.runner"):
            run_until_idle(agent)
        agent.close()
        assert len(sink.events) == 2
        assert agent.counters.invalid == 3 and agent.counters.read == 6
        warnings = [r.getMessage() for r in caplog.records]
        assert warnings[0].startswith(f"{log}:2: invalid line, skipped: ")
        assert warnings[1].startswith(f"{log}:3: invalid line, skipped: expected a JSON object")
        assert warnings[2].startswith(f"{log}:5: invalid line, skipped: invalid audit event: "
                                      "/actor: Object missing required field `actor`")


class TestK8sAudit:
    def test_a_kubernetes_audit_log_becomes_events(self, tmp_path: Path) -> None:
        log = tmp_path / "audit.log"
        shutil.copy(K8S_SAMPLES, log)
        sink = FakeClient()
        agent = Agent(config(tmp_path, FileConfig(log, "k8s-audit", ("ResponseComplete",
                                                                      "Panic"), "beginning")),
                      sink)
        run_until_idle(agent)
        agent.close()
        assert agent.counters.read == 51
        assert agent.counters.filtered == 2  # the two ResponseStarted events
        assert len(sink.events) == 49
        # Falco's fixtures reuse two auditIDs with edited content (line 51 repeats line 1
        # with another user); a real API server never does.
        assert len(set(sink.ids)) == 47
        assert all(i.startswith("k8s:") and i.endswith(":ResponseComplete") for i in sink.ids)

    def test_an_event_list_line_yields_each_event(self, tmp_path: Path) -> None:
        log = tmp_path / "audit.log"
        body = (Path(__file__).parent.parent / "data" / "k8s"
                / "eventlist_v1_from_falco.json").read_bytes()
        log.write_bytes(orjson.dumps(orjson.loads(body)) + b"\n")
        sink = FakeClient()
        agent = Agent(config(tmp_path, FileConfig(log, "k8s-audit", None, "beginning")), sink)
        run_until_idle(agent)
        agent.close()
        assert len(sink.events) == 4


class TestDurability:
    def test_a_full_spool_pauses_reading_without_consuming(self, tmp_path: Path) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(b"".join(jline(event(i, id=f"e{i}")) for i in range(5)))
        sink = FakeClient()
        cfg = config(tmp_path, FileConfig(log, "json", None, "beginning"))
        agent = Agent(cfg, sink)
        sink.full = True
        assert agent.step() == 0
        agent.tick(force=True)
        offsets = orjson.loads((cfg.state_dir / "offsets.json").read_bytes())
        assert offsets[str(log)]["offset"] == 0
        assert agent.counters.blocked == 1
        sink.full = False
        run_until_idle(agent)
        agent.close()
        assert sink.ids == [f"e{i}" for i in range(5)]

    def test_a_restart_resumes_after_the_last_committed_line(self, tmp_path: Path) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(b"".join(jline(event(i, id=f"e{i}")) for i in range(3)))
        cfg = config(tmp_path, FileConfig(log, "json", None, "beginning"))
        first = FakeClient()
        agent = Agent(cfg, first)
        run_until_idle(agent)
        agent.close()
        with open(log, "ab") as f:
            f.write(b"".join(jline(event(i, id=f"e{i}")) for i in range(3, 6)))
        second = FakeClient()
        agent = Agent(cfg, second)
        run_until_idle(agent)
        agent.close()
        assert first.ids == ["e0", "e1", "e2"] and second.ids == ["e3", "e4", "e5"]

    def test_a_crash_before_the_offsets_are_saved_resends_the_same_ids(
            self, tmp_path: Path) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(b"".join(jline(event(i)) for i in range(4)))
        cfg = config(tmp_path, FileConfig(log, "json", None, "beginning"))
        first = FakeClient()
        agent = Agent(cfg, first)
        agent.tick(force=True)  # offsets saved at 0
        agent.step()  # spooled, but "crashes" before the offsets are saved again
        os.close(agent._lock_fd)  # what the kernel does for a dead process
        second = FakeClient()
        agent = Agent(cfg, second)
        run_until_idle(agent)
        agent.close()
        assert first.ids == second.ids and len(first.ids) == 4  # the server dedups these

    def test_one_agent_per_state_directory(self, tmp_path: Path) -> None:
        cfg = config(tmp_path, FileConfig(tmp_path / "a.log", "json", None, "beginning"))
        agent = Agent(cfg, FakeClient())
        with pytest.raises(ConfigError, match="another agent is running"):
            Agent(cfg, FakeClient())
        agent.close()
        Agent(cfg, FakeClient()).close()


class TestStatus:
    def test_status_json_and_metrics(self, tmp_path: Path) -> None:
        log = tmp_path / "app.jsonl"
        log.write_bytes(jline(event(0)) + b"oops\n" + b'{"partial":')
        port = free_port()
        cfg = config(tmp_path, FileConfig(log, "json", None, "beginning"), metrics_port=port,
                     poll_interval=0.02)
        agent = Agent(cfg, FakeClient())
        stop = threading.Event()
        runner = threading.Thread(target=agent.run, args=(stop,))
        runner.start()
        try:
            for _ in range(300):  # the agent rewrites its status every second
                if agent.status().get("counters", {}).get("read") == 2:
                    break
                stop.wait(0.02)
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        finally:
            stop.set()
            runner.join()
            agent.close()
        snap = orjson.loads((cfg.state_dir / "status.json").read_bytes())
        assert snap["pid"] == os.getpid()
        assert snap["counters"] == {"read": 2, "events": 1, "filtered": 0, "invalid": 1,
                                    "blocked": 0, "sent": 0, "retried": 3, "spooled_bytes": 42,
                                    "dropped": 0, "rejected": 0, "duplicates": 0, "pending": 1}
        (f,) = snap["files"]
        assert f["path"] == str(log) and f["format"] == "json"
        assert f["lag_bytes"] == len(b'{"partial":') and f["line"] == 2
        assert "auditkeep_agent_lines_read_total 2.0" in metrics
        assert "auditkeep_agent_lines_invalid_total 1.0" in metrics
        assert "auditkeep_agent_events_retried_total 3.0" in metrics
        assert "auditkeep_agent_spooled_bytes 42.0" in metrics
        assert f'auditkeep_agent_file_lag_bytes{{path="{log}"}} 11.0' in metrics
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)  # closed with the agent
