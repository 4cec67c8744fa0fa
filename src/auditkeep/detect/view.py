"""One committed event as rules see it: the record, and the raw object a source kept.

Rules look fields up by dotted path. `raw.<path>` reads the source's raw object (the
Kubernetes audit event, the CloudTrail record) as it arrived, so Sigma rules written for
those logs use their own field names; any other path reads the record. A path through
a list reads every item (`raw.resources.ARN` is every resource's ARN), as the search
index does. The raw object is parsed only when a rule asks for it.
"""

from __future__ import annotations

from typing import Any

import orjson

from auditkeep.query.predicate import Doc

RAW = "raw."


class EventView:
    __slots__ = ("_doc", "_raw", "_raw_bytes", "log", "raw_format", "record", "seq")

    def __init__(self, record: dict[str, Any], *, log: str = "", seq: int | None = None,
                 raw: tuple[str, bytes] | None = None) -> None:
        self.record = record
        self.log = log
        self.seq = record.get("seq", -1) if seq is None else seq
        self.raw_format: str | None = raw[0] if raw else None
        self._raw_bytes = raw[1] if raw else None
        self._raw: Any = None
        self._doc: Doc | None = None

    @classmethod
    def of_raw_object(cls, record: dict[str, Any], fmt: str, obj: Any, *, log: str = ""
                      ) -> EventView:
        """A view whose raw object is already parsed (rule tests, generated events)."""
        v = cls(record, log=log)
        v.raw_format = fmt
        v._raw = obj
        return v

    @property
    def raw(self) -> Any:
        if self._raw is None and self._raw_bytes is not None:
            try:
                self._raw = orjson.loads(self._raw_bytes)
            except orjson.JSONDecodeError:  # protobuf, syslog: their fields are mapped
                self._raw = {}
            self._raw_bytes = None
        return self._raw

    @property
    def doc(self) -> Doc:
        """The record flattened as the search index holds it (for query-language rules),
        built once per event however many rules ask."""
        if self._doc is None:
            self._doc = Doc.of(self.record, self.raw)
        return self._doc

    @property
    def id(self) -> str:
        return str(self.record.get("id", ""))

    @property
    def time(self) -> str:
        return str(self.record.get("time") or self.record.get("received") or "")

    def values(self, path: str) -> list[Any]:
        """Every scalar (or object, for a path naming one) at `path`; [] when absent."""
        if path.startswith(RAW):
            root, path = self.raw, path[len(RAW):]
            if root is None:
                return []
        else:
            root = self.record
        return _walk(root, path.split("."))

    def first(self, path: str) -> Any:
        found = self.values(path)
        return found[0] if found else None


def _walk(node: Any, parts: list[str]) -> list[Any]:
    out: list[Any] = []
    _collect(node, parts, 0, out)
    return out


def _collect(node: Any, parts: list[str], i: int, out: list[Any]) -> None:
    while True:
        if isinstance(node, list):
            for item in node:
                _collect(item, parts, i, out)
            return
        if i == len(parts):
            if node is not None:
                out.append(node)
            return
        if not isinstance(node, dict):
            return
        if parts[i] in node:
            node = node[parts[i]]
            i += 1
            continue
        # A key that itself holds dots ("k8s.io/role" labels, "Name.First") matches
        # the rest of the path joined back.
        for j in range(len(parts), i + 1, -1):
            joined = ".".join(parts[i:j])
            if joined in node:
                _collect(node[joined], parts, j, out)
                return
        return
