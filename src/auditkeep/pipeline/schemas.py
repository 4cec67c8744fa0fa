"""Per-action schemas: an operator's JSON Schema (Draft 2020-12) for the `metadata` and
`resource` of one action, per tenant, versioned.

The schema is applied to `{"metadata": ..., "resource": ...}` of each event with that
action. What a violation does is the tenant's configuration (`schema_violations`):
`reject` fails the request with a problem naming the schema version and the failing
pointer; `flag` stores the event with `metadata.schema_violation` = {version, pointer,
message} and counts it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import jsonschema
import orjson
from jsonschema.validators import Draft202012Validator

from auditkeep.errors import FieldProblem, ValidationError
from auditkeep.storage.base import Backend


@dataclass(frozen=True, slots=True)
class Violation:
    index: int
    action: str
    version: int
    pointer: str  # into the event, e.g. /metadata/amount
    message: str


def check_schema(schema: Any) -> None:
    """Raise a 400 naming what is wrong when `schema` is not a usable JSON Schema."""
    if not isinstance(schema, dict):
        raise ValidationError("a schema must be a JSON object", problems=[
            FieldProblem("/", "not a JSON Schema object", "an object", type(schema).__name__)])
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        pointer = "/" + "/".join(str(p) for p in exc.absolute_path)
        raise ValidationError(f"not a valid JSON Schema (2020-12): {exc.message}",
                              problems=[FieldProblem(pointer, exc.message)]) from None


class ActionSchemas:
    """Compiled validators per tenant, loaded from storage once and refreshed on `put`."""

    def __init__(self, store: Backend) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._tenants: dict[str, dict[str, tuple[int, Draft202012Validator]]] = {}
        self.violations: dict[str, int] = {}  # by tenant, for /v1/status
        # Bumped by every `put`: ingest workers hold their own copies of the validators
        # and drop them when a job carries a newer generation (server/workers.py).
        self.generation = 0

    def put(self, tenant: str, action: str, schema: dict[str, Any], created: str) -> int:
        check_schema(schema)
        version = self._store.put_schema(tenant, action, orjson.dumps(schema).decode(), created)
        with self._lock:
            self._tenants.pop(tenant, None)
            self.generation += 1
        return version

    def forget(self) -> None:
        """Drop every compiled validator: the next check reloads them from storage."""
        with self._lock:
            self._tenants.clear()

    def count_violations(self, counts: dict[str, int]) -> None:
        """Add violations found elsewhere (by an ingest worker), by tenant."""
        with self._lock:
            for tenant, n in counts.items():
                self.violations[tenant] = self.violations.get(tenant, 0) + n

    def stored(self, tenant: str, action: str, version: int | None = None
               ) -> tuple[int, str] | None:
        return self._store.get_schema(tenant, action, version)

    def _for(self, tenant: str) -> dict[str, tuple[int, Draft202012Validator]]:
        with self._lock:
            found = self._tenants.get(tenant)
            if found is None:
                found = self._tenants[tenant] = {
                    action: (version, Draft202012Validator(orjson.loads(text)))
                    for action, (version, text) in self._store.latest_schemas(tenant).items()}
            return found

    def actions(self, tenant: str) -> frozenset[str]:
        """The actions of `tenant` that have a schema (usually none)."""
        return frozenset(self._for(tenant))

    def check(self, tenant: str, events: list[tuple[str, dict[str, Any]] | None]
              ) -> list[Violation]:
        """Violations among `(action, {"metadata": ..., "resource": ...})` pairs (None:
        an event not to check); the first error of each event (sorted by path, so the
        answer is stable)."""
        schemas = self._for(tenant)
        if not schemas:
            return []
        out: list[Violation] = []
        for i, pair in enumerate(events):
            if pair is None:
                continue
            action, instance = pair
            entry = schemas.get(action)
            if entry is None:
                continue
            version, validator = entry
            errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
            if errors:
                e = errors[0]
                pointer = "".join(f"/{p}" for p in e.absolute_path) or "/"
                out.append(Violation(i, action, version, pointer, e.message))
        if out:
            with self._lock:
                self.violations[tenant] = self.violations.get(tenant, 0) + len(out)
        return out


def raise_violations(violations: list[Violation], *, single: bool) -> None:
    problems = [FieldProblem(("" if single else f"/{v.index}") + v.pointer,
                             f"breaks schema v{v.version} of {v.action}: {v.message}",
                             index=v.index) for v in violations]
    raise ValidationError(f"{len(violations)} event(s) break their action's schema",
                          problems=problems)
