"""The text formats: NDJSON (one mapped record a line) and CSV (RFC 4180, formula-safe).

Both turn one batch into one bytes chunk, so memory follows the batch size and never
the export's size.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterable, Iterator
from typing import Any

import orjson

from auditkeep.export.columns import cell_text, lookup
from auditkeep.export.mappings import Mapper

#: First characters that make Excel, LibreOffice or Google Sheets read a cell as a
#: formula (OWASP "CSV injection"); such cells get a leading `'`.
FORMULA_TRIGGERS = frozenset("=+-@\t\r")
# A plain number is safe even when it starts with "-", and stays a number when opened.
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def neutralise(cell: str) -> str:
    """`cell` made safe to open in a spreadsheet: a `'` in front if it starts with
    = + - @ tab or carriage return, unless it is a plain number such as `-12.5`."""
    if cell and cell[0] in FORMULA_TRIGGERS and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def ndjson_chunks(batches: Iterable[list[dict[str, Any]]], map_record: Mapper
                  ) -> Iterator[bytes]:
    """One chunk of lines per non-empty batch, each line one mapped record."""
    dumps = orjson.dumps
    for batch in batches:
        if batch:
            yield b"\n".join([dumps(map_record(r)) for r in batch]) + b"\n"


def csv_chunks(batches: Iterable[list[dict[str, Any]]], map_record: Mapper,
               columns: list[str], known: Collection[str] = ()) -> Iterator[bytes]:
    """The header row, then one chunk of rows per non-empty batch. CRLF line ends and
    minimal quoting, as RFC 4180 has it; UTF-8 without a byte order mark.

    Header names in `known` (the mapping's fixed column names, such as ECS's
    `@timestamp`) are written as they are; any other name is neutralised like a cell."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([c if c in known else neutralise(c) for c in columns])
    yield _drain(buf)
    for batch in batches:
        if not batch:
            continue
        for record in batch:
            mapped = map_record(record)
            writer.writerow([_cell(lookup(mapped, c)) for c in columns])
        yield _drain(buf)


def _cell(value: Any) -> str:
    text = cell_text(value)
    return "" if text is None else neutralise(text)


def _drain(buf: io.StringIO) -> bytes:
    out = buf.getvalue().encode()
    buf.seek(0)
    buf.truncate()
    return out
