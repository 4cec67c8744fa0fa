"""The entry point of exports: check the format, mapping and columns asked for, all at
once, then stream the records batch by batch in the chosen format."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from auditkeep.errors import FieldProblem, ValidationError
from auditkeep.export.columns import DEFAULT_COLUMNS, column_problems
from auditkeep.export.mappings import mapper, mapping_problem
from auditkeep.export.parquet import parquet_chunks
from auditkeep.export.text import csv_chunks, ndjson_chunks

FORMATS = ("ndjson", "csv", "parquet")

_MEDIA_TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8",
                "parquet": "application/vnd.apache.parquet"}


def _format_problem(fmt: object) -> FieldProblem | None:
    if fmt in _MEDIA_TYPES:
        return None
    return FieldProblem("/query/format", "unknown export format", " or ".join(FORMATS),
                        repr(fmt))


def media_type(fmt: str) -> str:
    """The `Content-Type` of an export in `fmt`; `ValidationError` for an unknown one."""
    problem = _format_problem(fmt)
    if problem is not None:
        raise ValidationError(f"unknown export format {fmt!r}", problems=[problem])
    return _MEDIA_TYPES[fmt]


def stream(batches: Iterable[list[dict[str, Any]]], fmt: str, mapping: str = "auditkeep",
           columns: list[str] | None = None) -> Iterator[bytes]:
    """Stored records, given in batches, as the bytes of one export.

    Arguments are checked before anything is read, and every problem is reported in
    one `ValidationError` (pointers `/query/format`, `/query/mapping`,
    `/query/columns`), so a server can still answer 400 before it starts a 200.
    `columns` picks CSV and Parquet columns (dotted paths into the mapped record;
    default `DEFAULT_COLUMNS[mapping]`); NDJSON writes whole records and refuses them.

    The bytes come one chunk per batch (CSV: the header first; Parquet: one row group
    per batch, then the footer): memory follows the batch size, not the export size.
    """
    problems = [p for p in (_format_problem(fmt), mapping_problem(mapping)) if p is not None]
    if columns is not None:
        if fmt == "ndjson":
            problems.append(FieldProblem(
                "/query/columns", "columns apply to csv and parquet only",
                "no columns with ndjson", ",".join(map(str, columns))))
        else:
            problems.extend(column_problems(columns))
    if problems:
        raise ValidationError(
            "; ".join(f"{p.pointer}: {p.detail}" for p in problems), problems=problems)
    map_record = mapper(mapping)
    if fmt == "ndjson":
        return ndjson_chunks(batches, map_record)
    chosen = list(columns) if columns is not None else list(DEFAULT_COLUMNS[mapping])
    if fmt == "csv":
        return csv_chunks(batches, map_record, chosen, known=DEFAULT_COLUMNS[mapping])
    return parquet_chunks(batches, map_record, mapping, chosen)


