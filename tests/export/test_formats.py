"""The public API: names, media types, and arguments refused with pointers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import auditkeep.export
from auditkeep.errors import ValidationError
from auditkeep.export import FORMATS, MAPPINGS, mapper, media_type, stream
from auditkeep.export.columns import DEFAULT_COLUMNS, MAX_COLUMNS


def test_exported_members_are_sorted_and_importable() -> None:
    assert auditkeep.export.__all__ == sorted(auditkeep.export.__all__)
    assert auditkeep.export.__all__ == ["FORMATS", "MAPPINGS", "mapper", "media_type",
                                        "stream"]
    for name in auditkeep.export.__all__:
        assert hasattr(auditkeep.export, name)


def test_formats_and_mappings() -> None:
    assert FORMATS == ("ndjson", "csv", "parquet")
    assert MAPPINGS == ("auditkeep", "ocsf", "ecs", "cadf")
    assert set(DEFAULT_COLUMNS) == set(MAPPINGS)


@pytest.mark.parametrize(("fmt", "media"), [
    ("ndjson", "application/x-ndjson"), ("csv", "text/csv; charset=utf-8"),
    ("parquet", "application/vnd.apache.parquet")])
def test_media_type(fmt: str, media: str) -> None:
    assert media_type(fmt) == media


def test_the_auditkeep_mapping_is_the_identity() -> None:
    record = {"action": "a", "seq": 1}
    assert mapper("auditkeep")(record) is record


class TestRefusals:
    def test_unknown_format(self) -> None:
        with pytest.raises(ValidationError) as exc:
            media_type("xlsx")
        [problem] = exc.value.problems
        assert problem.pointer == "/query/format"
        assert problem.expected == "ndjson or csv or parquet"
        assert problem.actual == "'xlsx'"

    def test_unknown_mapping(self) -> None:
        with pytest.raises(ValidationError) as exc:
            mapper("leef")
        [problem] = exc.value.problems
        assert problem.pointer == "/query/mapping"
        assert problem.expected == "auditkeep or ocsf or ecs or cadf"

    def test_stream_reports_every_problem_at_once(self) -> None:
        with pytest.raises(ValidationError) as exc:
            stream([], "xml", "splunk", columns=["a..b"])
        assert [p.pointer for p in exc.value.problems] == [
            "/query/format", "/query/mapping", "/query/columns"]
        assert exc.value.status == 400

    def test_stream_checks_before_reading_any_batch(self) -> None:
        consumed: list[bool] = []

        def batches() -> Iterator[list[dict[str, Any]]]:
            consumed.append(True)
            yield []

        with pytest.raises(ValidationError):
            stream(batches(), "csv", "nope")
        assert consumed == []

    @pytest.mark.parametrize(("columns", "detail"), [
        ([], "wrong number of columns"),
        (["a"] * (MAX_COLUMNS + 1), "wrong number of columns"),
        (["actor..id"], "column 0 is not a dotted path"),
        (["ok", ".id"], "column 1 is not a dotted path"),
        (["id", ""], "column 1 is not a dotted path"),
        (["x" * 257], "column 0 is not a dotted path"),
        (["id", "seq", "id"], "column 'id' is asked for twice"),
        ("id,seq", "columns must be a list of dotted paths"),
    ])
    def test_bad_columns(self, columns: object, detail: str) -> None:
        with pytest.raises(ValidationError) as exc:
            stream([], "csv", columns=columns)  # type: ignore[arg-type]  # wrong on purpose
        assert [(p.pointer, p.detail) for p in exc.value.problems] == [
            ("/query/columns", detail)]

    def test_columns_with_ndjson(self) -> None:
        with pytest.raises(ValidationError) as exc:
            stream([], "ndjson", columns=["id"])
        assert exc.value.problems[0].pointer == "/query/columns"
        assert exc.value.problems[0].detail == "columns apply to csv and parquet only"
