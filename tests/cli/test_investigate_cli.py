"""`search QUERY`, `aggregate`, `context`, `export` and `saved` against one real server
seeded with the 40 events of tests/server/test_investigate.py.

Output is checked in-process with click's CliRunner (fast); what depends on the real
entry point (one-line errors, exit codes, the caret display, a terminal) runs
`python -m auditkeep` in a subprocess."""

from __future__ import annotations

import csv
import os
import pty
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

import auditkeep.cli.main as ak_main  # first: it loads (and registers) every CLI module
from auditkeep.cli.query_api import caret
from auditkeep.cli.render import bar, sparkline
from tests.cli.test_cli import ak, env_for
from tests.conftest import ServerProcess
from tests.server.helpers import seeded_server
from tests.server.test_investigate import _events

ALICE_FAILED = [30, 15, 0]  # actor:alice AND outcome:failure, newest first


def num(event_id: str) -> int:
    return int(event_id[-12:])


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = seeded_server(tmp_path_factory.mktemp("inv-cli"), _events())
    yield s
    s.stop()


def run(srv: ServerProcess, *args: str) -> Result:
    return CliRunner().invoke(ak_main.cli, list(args), env=env_for(srv))


def ok(srv: ServerProcess, *args: str) -> Result:
    r = run(srv, *args)
    assert r.exit_code == 0, (args, r.output, r.exception)
    return r


def rows(table: str) -> list[list[str]]:
    """A printed table's rows (without the header), cells split on whitespace."""
    return [line.split() for line in table.splitlines()[1:] if line.strip()]


class TestSearch:
    def test_query_as_a_table_and_as_ndjson(self, srv: ServerProcess) -> None:
        out = ok(srv, "search", "actor:alice AND outcome:failure").stdout
        assert out.splitlines()[0].split() == ["seq", "time", "actor", "action", "resource",
                                               "outcome"]
        assert [(int(r[0]), r[2], r[5]) for r in rows(out)] == [
            (i, "alice", "failure") for i in ALICE_FAILED]
        out = ok(srv, "search", "actor:alice AND outcome:failure", "--format", "ndjson").stdout
        assert [num(orjson.loads(line)["id"]) for line in out.splitlines()] == ALICE_FAILED

    def test_columns_are_dotted_paths(self, srv: ServerProcess) -> None:
        out = ok(srv, "search", "actor:alice AND outcome:failure", "--columns",
                 "seq,metadata.amount,actor.type,metadata").stdout
        assert out.splitlines()[0].split() == ["seq", "metadata.amount", "actor.type",
                                               "metadata"]
        assert rows(out)[0] == ["30", "3000", "user", '{"amount":3000,"region":"us"}']

    def test_all_follows_the_cursor_to_the_end(self, srv: ServerProcess) -> None:
        out = ok(srv, "search", "action:orders.*", "--all", "--limit", "7",
                 "--format", "ndjson").stdout
        got = [num(orjson.loads(line)["id"]) for line in out.splitlines()]
        assert got == sorted((i for i in range(40) if i % 4 < 2), reverse=True)
        table = ok(srv, "search", "action:orders.*", "--all", "--limit", "7").stdout
        assert table.count("seq") == 1 and "more:" not in table  # one header, no cursor
        assert [int(r[0]) for r in rows(table)] == got
        one = ok(srv, "search", "action:orders.*", "--limit", "7").stdout
        assert len(rows(one)) == 8 and rows(one)[-1][0] == "more:"  # 7 rows and the cursor
        doc = orjson.loads(ok(srv, "search", "action:orders.*", "--all", "--limit", "7",
                              "--format", "json").stdout)
        assert [num(e["id"]) for e in doc["events"]] == got and doc["next_cursor"] is None

    def test_filter_options_still_work(self, srv: ServerProcess) -> None:
        out = ok(srv, "search", "--actor", "alice", "--action", "iam.*", "--limit", "1000",
                 "--format", "ndjson").stdout
        assert sorted(num(orjson.loads(x)["id"]) for x in out.splitlines()) == [
            i for i in range(40) if i % 3 == 0 and i % 4 >= 2]

    def test_saved_search_runs_with_its_columns(self, srv: ServerProcess) -> None:
        ok(srv, "saved", "put", "cli-failed-alice", "actor:alice AND outcome:failure",
           "--columns", "seq,action,outcome")
        try:
            out = ok(srv, "search", "--saved", "cli-failed-alice").stdout
            assert out.splitlines()[0].split() == ["seq", "action", "outcome"]
            assert [int(r[0]) for r in rows(out)] == ALICE_FAILED
            nd = ok(srv, "search", "--saved", "cli-failed-alice", "--format", "ndjson").stdout
            assert [num(orjson.loads(x)["id"]) for x in nd.splitlines()] == ALICE_FAILED
        finally:
            ok(srv, "saved", "delete", "cli-failed-alice")

    def test_a_syntax_error_shows_the_column_with_a_caret(self, srv: ServerProcess) -> None:
        query = "actor:alice AND (outcome:failure"
        r = ak("search", query, env=env_for(srv))
        assert r.returncode == 1 and r.stdout == ""
        first, shown, pointer = r.stderr.splitlines()
        assert first.startswith("auditkeep: 400 ") and "column 33" in first
        assert shown == f"  {query}"
        assert pointer.index("^") == 2 + 32  # under column 33: just past the end
        assert pointer.endswith('expected ")" or OR')

    def test_mixing_a_query_with_filters_is_a_usage_error(self, srv: ServerProcess) -> None:
        for args in (["search", "actor:alice", "--actor", "bob"],
                     ["search", "actor:alice", "--saved", "x"],
                     ["search", "--saved", "x", "-q", "disk"]):
            r = ak(*args, env=env_for(srv))
            assert r.returncode == 2, (args, r.stderr)
            assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("auditkeep: ")
            assert "not both" in r.stderr


class TestAggregate:
    def test_groups_distinct_and_histogram(self, srv: ServerProcess) -> None:
        out = ok(srv, "aggregate", "outcome:success", "--group-by", "actor.id,outcome",
                 "--top", "2", "--distinct", "resource.id", "--interval", "15m",
                 "--since", "2026-11-01T01:30:00Z", "--until", "2026-11-01T04:00:00Z").stdout
        lines = [line.rstrip() for line in out.splitlines()]
        assert lines[0] == "total: 32 events"
        table = lines[lines.index("") + 1:]
        assert table[0].split() == ["actor.id", "outcome", "count", "share"]
        assert [r.split() for r in table[1:3]] == [
            ["alice", "success", "11", "34.4%", "█" * 30],
            ["bob", "success", "11", "34.4%", "█" * 30]]
        assert "distinct resource.id: 6" in lines
        at = lines.index("events per 15m (10 buckets)")
        # 01:30 and 01:45 are empty (▁); 4 successes in every bucket from 02:00 on
        assert lines[at + 1] == "▁▁████████  max 4 per 15m"
        assert lines[at + 2] == "2026-11-01T01:30:00Z → 2026-11-01T03:45:00Z"

    def test_json_is_the_server_answer(self, srv: ServerProcess) -> None:
        body = orjson.loads(ok(srv, "aggregate", "--group-by", "metadata.region",
                               "--format", "json").stdout)
        assert body["total"] == 40
        assert sorted((g["key"][0], g["count"]) for g in body["groups"]) == [("eu", 20),
                                                                            ("us", 20)]

    def test_bad_group_by_is_one_line(self, srv: ServerProcess) -> None:
        r = run(srv, "aggregate", "--group-by", "nosuch")
        assert r.exit_code == 1 and "/query/group_by" in r.stderr
        assert len(r.stderr.splitlines()) == 1

    def test_sparkline_and_bar_scale(self) -> None:
        assert sparkline([0, 1, 50, 100]) == "▁▂▅█"  # any event at all is above empty
        assert sparkline([0, 0]) == "▁▁"
        assert bar(10, 10, 4) == "████" and bar(1, 8, 1) == "▏" and bar(0, 8) == ""


class TestContext:
    def test_the_event_is_marked_among_its_neighbours(self, srv: ServerProcess) -> None:
        out = ok(srv, "context", "0190a000-0000-7000-8000-000000000012", "--before", "2",
                 "--after", "3").stdout
        lines = out.splitlines()
        assert lines[0] == "context by actor (actor.id=alice): 2 before, 3 after"
        body = [line.split() for line in lines[2:]]
        assert [int(r[-6]) for r in body] == [6, 9, 12, 15, 18, 21]
        assert [r[0] == "▶" for r in body] == [False, False, True, False, False, False]
        assert all(r[-4] == "alice" for r in body)

    def test_json_and_a_missing_event(self, srv: ServerProcess) -> None:
        body = orjson.loads(ok(srv, "context", "0190a000-0000-7000-8000-000000000007",
                               "--by", "resource", "--before", "1", "--after", "1",
                               "--format", "json").stdout)
        assert [num(e["id"]) for e in body["before"] + body["after"]] == [1, 13]
        r = run(srv, "context", "nosuch")
        assert r.exit_code == 1 and "404" in r.stderr


class TestExport:
    WANT = sorted(f"0190a000-0000-7000-8000-{i:012d}" for i in range(40) if i % 4 >= 2)

    def export(self, srv: ServerProcess, path: Path, *args: str) -> None:
        r = ok(srv, "export", "action:iam.*", "-o", str(path), *args)
        assert r.stdout == ""
        assert r.stderr.strip().endswith(f"bytes ({args[1]}, auditkeep) to {path}")
        assert f"exported {path.stat().st_size:,} bytes" in r.stderr
        assert not Path(f"{path}.part").exists()

    def test_ndjson_csv_and_parquet_files(self, srv: ServerProcess, tmp_path: Path) -> None:
        nd, cs, pa = tmp_path / "x.ndjson", tmp_path / "x.csv", tmp_path / "x.parquet"
        self.export(srv, nd, "--format", "ndjson")
        self.export(srv, cs, "--format", "csv", "--columns", "id,actor.id,metadata.amount")
        self.export(srv, pa, "--format", "parquet")
        assert sorted(orjson.loads(x)["id"] for x in nd.read_text().splitlines()) == self.WANT
        with cs.open(newline="") as f:
            got = list(csv.DictReader(f))
        assert len(got) == 20 and list(got[0]) == ["id", "actor.id", "metadata.amount"]
        assert sorted(r["id"] for r in got) == self.WANT
        assert sorted(pq.read_table(pa).column("id").to_pylist()) == self.WANT
        assert sorted(os.listdir(tmp_path)) == ["x.csv", "x.ndjson", "x.parquet"]

    def test_stdout_mapping_and_max_rows(self, srv: ServerProcess) -> None:
        r = ok(srv, "export", "actor:alice", "--mapping", "ocsf", "--max-rows", "3")
        got = [orjson.loads(x) for x in r.stdout.splitlines()]
        assert len(got) == 3 and all(g["actor"]["user"]["uid"] == "alice" for g in got)
        assert r.stderr.strip().endswith("(ndjson, ocsf) to stdout")

    def test_a_server_error_leaves_no_part_and_the_old_file(self, srv: ServerProcess,
                                                            tmp_path: Path) -> None:
        old = tmp_path / "out.csv"
        old.write_text("yesterday's export\n")
        r = ak("export", "action:(", "--format", "csv", "-o", str(old), env=env_for(srv))
        assert r.returncode == 1
        assert r.stderr.splitlines()[0].startswith("auditkeep: 400 ")
        assert old.read_text() == "yesterday's export\n"
        assert os.listdir(tmp_path) == ["out.csv"]

    def test_a_cut_stream_removes_the_part(self, tmp_path: Path) -> None:
        """A server that answers 200, sends a chunk, then drops the connection."""
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            port = listener.getsockname()[1]

            def serve() -> None:
                conn, _ = listener.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n6\r\nid,ac\n\r\n")

            t = threading.Thread(target=serve, daemon=True)
            t.start()
            out = tmp_path / "cut.csv"
            r = CliRunner().invoke(ak_main.cli, ["export", "--format", "csv", "-o", str(out)],
                                   env={"AUDITKEEP_URL": f"http://127.0.0.1:{port}",
                                        "AUDITKEEP_TOKEN": "ak_x"})
            t.join(10)
        assert r.exit_code == 1
        assert r.stderr.startswith("auditkeep: export failed after 6 bytes")
        assert len(r.stderr.splitlines()) == 1
        assert os.listdir(tmp_path) == []

    def test_parquet_to_a_terminal_is_refused(self, srv: ServerProcess) -> None:
        main, child = pty.openpty()
        try:
            r = subprocess.run([sys.executable, "-m", "auditkeep", "export", "--format",
                                "parquet"], stdout=child, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **env_for(srv)}, timeout=60, check=False)
        finally:
            os.close(child)
            os.close(main)
        assert r.returncode == 2
        assert r.stderr.startswith("auditkeep: parquet is binary")
        assert len(r.stderr.splitlines()) == 1


class TestSaved:
    def test_put_list_show_delete(self, srv: ServerProcess) -> None:
        r = ok(srv, "saved", "put", "cli-round", "action:iam.* AND metadata.region:eu",
               "--since", "2026-11-01T00:00:00Z", "--columns", "time,action",
               "--description", "IAM in the EU")
        assert r.stdout == "saved cli-round: action:iam.* AND metadata.region:eu\n"
        listed = ok(srv, "saved", "list").stdout
        assert rows(listed)[0][:6] == ["cli-round", "action:iam.*", "AND",
                                       "metadata.region:eu", "2026-11-01T00:00:00Z",
                                       "time,action"]
        shown = ok(srv, "saved", "show", "cli-round").stdout.splitlines()
        assert shown[:5] == ["name: cli-round", "query: action:iam.* AND metadata.region:eu",
                             "since: 2026-11-01T00:00:00Z", "columns: time,action",
                             "description: IAM in the EU"]
        assert shown[5].startswith("created_by: tok_")
        body = orjson.loads(ok(srv, "saved", "show", "cli-round", "--format", "json").stdout)
        assert body["columns"] == ["time", "action"]
        agg = ok(srv, "aggregate", "--saved", "cli-round").stdout
        assert agg.startswith(f"total: {sum(1 for i in range(40) if i % 4 >= 2 and i % 2)} ")
        assert ok(srv, "saved", "delete", "cli-round").stdout == "deleted cli-round\n"
        assert "cli-round" not in ok(srv, "saved", "list").stdout
        r = run(srv, "saved", "show", "cli-round")
        assert r.exit_code == 1 and "404" in r.stderr

    def test_a_bad_query_is_refused_with_a_caret(self, srv: ServerProcess) -> None:
        r = run(srv, "saved", "put", "cli-bad", "action:")
        assert r.exit_code == 1
        first, shown, pointer = r.stderr.splitlines()
        assert first.startswith("auditkeep: 400 ") and shown == "  action:"
        assert pointer.index("^") == 2 + 7 and "a value" in pointer

    def test_a_bad_name_is_a_usage_error(self, srv: ServerProcess) -> None:
        r = ak("saved", "show", "a/b", env=env_for(srv))
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1
        assert "not a saved search name" in r.stderr


def test_caret_lines_up_under_wide_characters() -> None:
    shown, pointer = caret("actor:渡辺 AND (", 14, '")"').splitlines()
    assert shown == "  actor:渡辺 AND ("
    assert pointer == "  " + " " * 15 + '^ expected ")"'  # 渡辺 is four cells wide
