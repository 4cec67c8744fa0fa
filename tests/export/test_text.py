"""NDJSON and CSV: one chunk per batch, RFC 4180 quoting, formula neutralisation."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
import pytest

from auditkeep.export import stream
from auditkeep.export.columns import DEFAULT_COLUMNS
from auditkeep.export.text import neutralise
from tests.export.stored import store


def _records(*overrides: dict[str, Any]) -> list[dict[str, Any]]:
    base: dict[str, Any] = {"action": "invoices.refund", "actor": {"id": "carol", "type": "user"},
                            "outcome": "success"}
    return store([{**base, **o} for o in overrides], first_seq=1)


def _csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


class TestNeutralise:
    @pytest.mark.parametrize(("cell", "safe"), [
        ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-", "'-"),
        ("-12.5", "-12.5"),     # a plain number stays a number
        ("-1e9", "-1e9"),
        ("alice", "alice"),
        ("a=b", "a=b"),
        ("", ""),
    ])
    def test_cells(self, cell: str, safe: str) -> None:
        assert neutralise(cell) == safe


class TestCsv:
    def test_header_then_one_chunk_per_batch(self) -> None:
        records = _records({}, {}, {})
        chunks = list(stream([records[:2], [], records[2:]], "csv"))
        assert len(chunks) == 3  # header, batch 1, batch 2 (the empty batch writes nothing)
        assert chunks[0] == (",".join(DEFAULT_COLUMNS["auditkeep"]) + "\r\n").encode()
        assert chunks[1].count(b"\r\n") == 2

    def test_no_records_is_just_the_header(self) -> None:
        assert _csv_rows(b"".join(stream([], "csv", "ecs"))) == [
            list(DEFAULT_COLUMNS["ecs"])]

    def test_quoting_follows_rfc_4180(self) -> None:
        reason = 'said "no", then\nleft; comma, quote " and CR\r'
        [record] = _records({"reason": reason, "metadata": {"note": "a,b", "n": 3}})
        data = b"".join(stream([[record]], "csv", columns=["reason", "metadata", "seq"]))
        assert data.endswith(b"\r\n")
        assert b'"said ""no"", then\nleft; comma, quote "" and CR\r"' in data
        rows = _csv_rows(data)
        assert rows == [["reason", "metadata", "seq"],
                        [reason, '{"n":3,"note":"a,b"}', "1"]]

    def test_formula_cells_are_neutralised(self) -> None:
        [record] = _records({"reason": "=cmd|' /C calc'!A0",
                             "metadata": {"amount": -12.5, "note": "@SUM(1+1)", "d": "-x"},
                             "resource": {"type": "+order", "id": "-42"}})
        columns = ["reason", "metadata.amount", "metadata.note", "metadata.d",
                   "resource.type", "resource.id"]
        rows = _csv_rows(b"".join(stream([[record]], "csv", columns=columns)))
        assert rows[1] == ["'=cmd|' /C calc'!A0", "-12.5", "'@SUM(1+1)", "'-x", "'+order",
                           "-42"]

    def test_a_requested_column_name_is_neutralised_but_known_ones_are_not(self) -> None:
        [record] = _records({})
        rows = _csv_rows(b"".join(stream([[record]], "csv", "ecs",
                                         columns=["@timestamp", "=x", "@y"])))
        assert rows[0] == ["@timestamp", "'=x", "'@y"]

    def test_values_are_text_json_or_empty(self) -> None:
        [record] = _records({"metadata": {"ok": True, "n": None, "list": [1, "a"]}})
        columns = ["metadata.ok", "metadata.n", "metadata.list", "metadata.list.1",
                   "metadata.missing", "actor"]
        rows = _csv_rows(b"".join(stream([[record]], "csv", columns=columns)))
        # JSON null and a missing field are both an empty cell: CSV has no null
        assert rows[1] == ["true", "", '[1,"a"]', "a", "",
                           '{"id":"carol","type":"user"}']

    def test_default_columns_of_the_stored_record(self) -> None:
        [record] = _records({"id": "evt-1", "resource": {"type": "invoice", "id": "INV-7"},
                             "metadata": {"amount": 120.5}, "severity": "notice",
                             "source": {"service": "billing"}, "request_id": "r-1",
                             "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                             "reason": "customer asked"})
        rows = _csv_rows(b"".join(stream([[record]], "csv")))
        assert dict(zip(rows[0], rows[1], strict=True)) == {
            "time": record["time"], "id": "evt-1", "seq": "1", "tenant": "acme",
            "actor.id": "carol", "actor.type": "user", "action": "invoices.refund",
            "outcome": "success", "category": "data_change", "severity": "notice",
            "resource.type": "invoice", "resource.id": "INV-7", "source.service": "billing",
            "request_id": "r-1", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "reason": "customer asked", "metadata": '{"amount":120.5}'}

    def test_a_dotted_metadata_key_is_found_whole(self) -> None:
        [record] = _records({"metadata": {"k8s.io/decision": "allow", "a": {"b.c": 1}}})
        rows = _csv_rows(b"".join(stream([[record]], "csv",
                                         columns=["metadata.k8s.io/decision", "metadata.a.b.c"])))
        assert rows[1] == ["allow", "1"]


class TestNdjson:
    def test_one_mapped_object_a_line(self) -> None:
        records = _records({}, {"outcome": "denied"})
        chunks = list(stream([records[:1], records[1:]], "ndjson", "ocsf"))
        assert len(chunks) == 2
        lines = b"".join(chunks).split(b"\n")
        assert lines[-1] == b""
        objs = [orjson.loads(line) for line in lines[:-1]]
        assert [o["status_id"] for o in objs] == [1, 2]
        assert [o["metadata"]["sequence"] for o in objs] == [1, 2]

    def test_the_auditkeep_mapping_is_the_stored_record(self) -> None:
        records = _records({"metadata": {"x": [1, {"y": "z"}]}})
        data = b"".join(stream([records], "ndjson"))
        assert orjson.loads(data) == records[0]
