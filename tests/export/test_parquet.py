"""Parquet: read back with pyarrow, types and values, one row group per batch."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from auditkeep.export import stream
from auditkeep.export.columns import DEFAULT_COLUMNS
from auditkeep.export.parquet import DrainedSink
from tests.export.stored import cloudtrail_record, k8s_secret_create, store

TS = pa.timestamp("us", tz="UTC")


def _records(n: int) -> list[dict[str, Any]]:
    return store([{"action": "invoices.refund", "actor": {"id": f"user-{i}", "type": "user"},
                   "outcome": "success", "time": f"2024-05-01T12:00:{i:02d}.123456Z",
                   "metadata": {"amount": i + 0.5, "tags": ["a", str(i)]}}
                  for i in range(n)], first_seq=100)


def _read(chunks: list[bytes]) -> Any:
    return pq.ParquetFile(io.BytesIO(b"".join(chunks)))


class TestParquet:
    def test_types_and_values_of_the_default_columns(self) -> None:
        records = _records(3)
        file = _read(list(stream([records], "parquet")))
        table = file.read()
        assert table.column_names == list(DEFAULT_COLUMNS["auditkeep"])
        assert table.schema.field("time").type == TS
        assert table.schema.field("seq").type == pa.int64()
        for name in table.column_names:
            if name not in ("time", "seq"):
                assert table.schema.field(name).type == pa.string(), name
        rows = table.to_pylist()
        assert rows[0]["time"] == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
        assert [r["seq"] for r in rows] == [100, 101, 102]
        assert rows[2]["actor.id"] == "user-2"
        assert rows[2]["metadata"] == '{"amount":2.5,"tags":["a","2"]}'
        assert rows[0]["resource.type"] is None

    def test_one_row_group_per_batch_and_a_chunk_each(self) -> None:
        records = _records(5)
        chunks = list(stream([records[:2], [], records[2:4], records[4:]], "parquet"))
        assert len(chunks) == 4  # three row groups, then the footer
        assert chunks[0].startswith(b"PAR1")
        assert chunks[-1].endswith(b"PAR1")
        assert all(chunks[:-1])
        file = _read(chunks)
        assert file.metadata.num_row_groups == 3
        assert [file.metadata.row_group(i).num_rows for i in range(3)] == [2, 2, 1]
        assert file.read().num_rows == 5

    def test_no_records_is_a_valid_empty_file(self) -> None:
        file = _read(list(stream([], "parquet", "ocsf")))
        assert file.metadata.num_row_groups == 0
        assert file.schema_arrow.names == list(DEFAULT_COLUMNS["ocsf"])

    def test_ocsf_times_and_ids_are_typed(self) -> None:
        record = k8s_secret_create()
        columns = ["time", "metadata.logged_time", "metadata.original_time", "class_uid",
                   "type_uid", "metadata.sequence", "resources", "api.operation"]
        table = _read(list(stream([[record]], "parquet", "ocsf", columns=columns))).read()
        types = {f.name: f.type for f in table.schema}
        assert types == {"time": TS, "metadata.logged_time": TS, "metadata.original_time": TS,
                         "class_uid": pa.int64(), "type_uid": pa.int64(),
                         "metadata.sequence": pa.int64(), "resources": pa.string(),
                         "api.operation": pa.string()}
        [row] = table.to_pylist()
        # OCSF `time` is whole milliseconds; the original keeps the microseconds
        assert row["time"] == datetime(2020, 3, 24, 18, 53, 49, 25000, tzinfo=UTC)
        assert row["metadata.original_time"] == datetime(2020, 3, 24, 18, 53, 49, 25530,
                                                         tzinfo=UTC)
        assert row["class_uid"] == 6003
        assert row["type_uid"] == 600301
        assert row["metadata.sequence"] == 41
        assert row["resources"] == ('[{"type":"secrets","uid":"kube-system/bootstrap-token-'
                                    'ne7bxu","name":"bootstrap-token-ne7bxu"}]')

    def test_ecs_and_cadf_timestamps(self) -> None:
        record = cloudtrail_record(0)
        ecs = _read(list(stream([[record]], "parquet", "ecs",
                                columns=["@timestamp", "event.created", "event.sequence",
                                         "event.category"]))).read()
        assert ecs.schema.field("@timestamp").type == TS
        assert ecs.schema.field("event.created").type == TS
        [row] = ecs.to_pylist()
        assert row["@timestamp"] == datetime(2024, 7, 30, 21, 31, 21, tzinfo=UTC)
        assert row["event.sequence"] == 7
        assert row["event.category"] == '["api"]'
        cadf = _read(list(stream([[record]], "parquet", "cadf"))).read()
        assert cadf.schema.field("eventTime").type == TS
        assert cadf.to_pylist()[0]["action"] == "read"

    def test_a_user_chosen_column_is_a_string(self) -> None:
        records = _records(2)
        table = _read(list(stream([records], "parquet",
                                  columns=["metadata.amount", "metadata.tags", "seq"]))).read()
        assert table.schema.field("metadata.amount").type == pa.string()
        assert table.column("metadata.amount").to_pylist() == ["0.5", "1.5"]
        assert table.column("metadata.tags").to_pylist() == ['["a","0"]', '["a","1"]']


class TestDrainedSink:
    def test_tell_counts_every_byte_while_drain_empties_it(self) -> None:
        sink = DrainedSink()
        sink.write(b"abc")
        sink.write(memoryview(b"de"))
        assert sink.tell() == 5
        assert sink.drain() == b"abcde"
        assert sink.drain() == b""
        sink.write(b"f")
        assert sink.tell() == 6
        assert sink.drain() == b"f"
