"""Exports run in constant memory: 200,000 records go through while the export's own
peak stays a small fraction of its output, for Parquet and CSV alike."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from auditkeep.export import stream

ROWS = 200_000
BATCH = 1000


def _record(seq: int) -> dict[str, Any]:
    return {"id": "", "seq": seq, "tenant": "acme", "v": 1, "time": "",
            "received": "2024-05-01T13:00:00.000000Z", "submitter": "bench",
            "action": "invoices.refund", "outcome": "success", "category": "data_change",
            "actor": {"id": f"user-{seq % 997}", "type": "user", "ip": {"$c": "0" * 64}},
            "resource": {"type": "invoice", "id": ""}, "metadata": {"amount": 0, "note": ""}}


def _batches(pool: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """The same `BATCH` record objects, refilled for every batch: what is measured is
    then the export's memory, not the test's input (the server reads a batch, exports
    it and drops it). The digests make every row different, so compression cannot hide
    an output that is being held back."""
    for start in range(0, ROWS, BATCH):
        for seq, rec in enumerate(pool, start):
            digest = hashlib.sha256(seq.to_bytes(8, "big")).hexdigest()
            rec["id"] = f"evt-{seq}-{digest[:16]}"
            rec["seq"] = seq
            rec["time"] = f"2024-05-01T12:{seq // 6000 % 60:02d}:{seq // 100 % 60:02d}.{seq:06d}Z"
            rec["resource"]["id"] = f"INV-{digest[16:40]}"
            rec["metadata"]["amount"] = seq / 7
            rec["metadata"]["note"] = hashlib.sha512(digest.encode()).hexdigest()
        yield pool


def _run(fmt: str, out: Path) -> tuple[int, int, int]:
    """(bytes written, Python peak, Arrow pool peak) of one export into `out`."""
    pool = [_record(i) for i in range(BATCH)]
    total = 0
    arrow_peak = 0
    tracemalloc.start()
    try:
        with out.open("wb") as f:
            for chunk in stream(_batches(pool), fmt):
                total += len(chunk)
                f.write(chunk)
                arrow_peak = max(arrow_peak, pa.total_allocated_bytes())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return total, peak, arrow_peak


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_memory_stays_flat_while_the_output_grows(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"export.{fmt}"
    total, peak, arrow_peak = _run(fmt, out)
    # The output is tens of MB; an export that buffered it would peak above it.
    assert total > 20_000_000, total
    assert peak < total / 5, (peak, total)
    assert arrow_peak < total / 5, (arrow_peak, total)
    if fmt == "parquet":
        meta = pq.ParquetFile(out).metadata
        assert (meta.num_rows, meta.num_row_groups) == (ROWS, ROWS // BATCH)
    else:
        with out.open("rb") as f:
            assert sum(1 for _ in f) == ROWS + 1
