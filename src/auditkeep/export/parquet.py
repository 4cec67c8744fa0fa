"""Parquet export in constant memory: one row group per batch, written into a sink
that hands its bytes over after every row group, so only one batch's worth of data
(and the footer's row-group index) is ever held, however many rows there are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from auditkeep.export._record import epoch_us, integer
from auditkeep.export.columns import ColumnKind, cell_text, column_kind, lookup
from auditkeep.export.mappings import Mapper

#: zstd: smaller than the default snappy, and read by every current Parquet reader.
COMPRESSION = "zstd"

_TIMESTAMP = pa.timestamp("us", tz="UTC")
_ARROW_TYPES = {"string": pa.string(), "int": pa.int64(), "timestamp": _TIMESTAMP,
                "epoch_ms": _TIMESTAMP}


class DrainedSink:
    """A write-only file for `ParquetWriter` whose bytes are taken out with `drain`.

    The writer records file offsets from `tell`, so `tell` counts every byte ever
    written, not the bytes currently held."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._written = 0
        self.closed = False

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._written += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def drain(self) -> bytes:
        """The bytes written since the last drain; the sink holds none afterwards."""
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


def schema_for(mapping: str, columns: list[str]) -> Any:
    """The Arrow schema of an export: timestamps in µs UTC, integers as int64, the
    rest strings (see `columns.column_kind`)."""
    return pa.schema([pa.field(c, _ARROW_TYPES[column_kind(mapping, c)]) for c in columns])


def parquet_chunks(batches: Iterable[list[dict[str, Any]]], map_record: Mapper,
                   mapping: str, columns: list[str]) -> Iterator[bytes]:
    """The Parquet file as chunks: one row group per non-empty batch, then the footer.
    An export of no records is still a valid file with the schema and no row groups."""
    schema = schema_for(mapping, columns)
    convert = [_CONVERTERS[column_kind(mapping, c)] for c in columns]
    sink = DrainedSink()
    writer = pq.ParquetWriter(sink, schema, compression=COMPRESSION)
    try:
        for batch in batches:
            if not batch:
                continue
            # Row by row, so only one mapped record is alive at a time: a batch of
            # mapped OCSF records would weigh more than the batch itself.
            values: list[list[Any]] = [[] for _ in columns]
            for record in batch:
                mapped = map_record(record)
                for column, to_value, out in zip(columns, convert, values, strict=True):
                    out.append(to_value(lookup(mapped, column)))
            arrays = [pa.array(v, type=field.type) for v, field in zip(values, schema,
                                                                        strict=True)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema),
                               row_group_size=len(batch))
            del values, arrays
            yield sink.drain()
    finally:
        writer.close()
    yield sink.drain()


def _epoch_ms_to_us(value: Any) -> int | None:
    ms = integer(value)
    return None if ms is None else ms * 1000


_CONVERTERS: dict[ColumnKind, Callable[[Any], Any]] = {
    "string": cell_text, "int": integer, "timestamp": epoch_us, "epoch_ms": _epoch_ms_to_us}
