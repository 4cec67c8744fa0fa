"""Model change auditing: one event per row that a registered model's ORM calls create,
update or delete, with the changed fields' `before` and `after` values.

`save()` and `delete()` (of an instance or a QuerySet, and cascades) are seen through
Django's signals. `bulk_create`, `bulk_update` and `QuerySet.update()` send no signals, the
gap django-auditlog and django-simple-history leave open; for registered models they are
wrapped on `QuerySet` itself, so every manager and related manager is covered: the rows'
values are read in one query per 500 rows before the write and again after it.

Events are emitted when the transaction commits (`transaction.on_commit`), so a rolled-back
change is never reported as made; the actor and request are those bound when the change
was made.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import decimal
import functools
import hashlib
import inspect
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from django.apps import apps  # type: ignore[import-untyped]
from django.core.exceptions import ValidationError  # type: ignore[import-untyped]
from django.db import connections, transaction  # type: ignore[import-untyped]
from django.db.models import QuerySet, signals  # type: ignore[import-untyped]
from django.utils.duration import duration_iso_string  # type: ignore[import-untyped]
from django.utils.functional import Promise  # type: ignore[import-untyped]
from django.utils.module_loading import import_string  # type: ignore[import-untyped]

from auditkeep import context
from auditkeep.errors import ConfigError, FieldProblem
from auditkeep.integrations._client import AuditEmitter, resolve_client
from auditkeep.integrations._http import ANONYMOUS

__all__ = ["ModelTracker", "json_safe", "register", "register_from_settings", "tracker_for",
           "unregister"]

_MAX_CHANGES = 100  # schema v1's limit on changes per event
_CHUNK = 500  # primary keys per `pk__in` query: below every backend's parameter limit
_BEFORE = "_auditkeep_before"  # instance attribute carrying pre_save's row to post_save
_NO_ROW: Mapping[str, Any] = MappingProxyType({})  # "no such row": compares as all-changed
_FROM_CONTEXT = ("tenant", "request_id", "trace_id", "span_id")
_SETTINGS_KEYS = frozenset({"MODELS", "CLIENT"})
_ENTRY_KEYS = frozenset({"model", "fields", "exclude"})

_trackers: dict[type[Any], ModelTracker] = {}
# True while a tracked bulk_update runs: Django implements it with QuerySet.update(),
# whose rows it has already recorded.
_inside_bulk: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "auditkeep_inside_bulk", default=False)


def json_safe(value: Any) -> Any:
    """A model value as JSON that says what was stored: dates and times in ISO 8601,
    Decimal and UUID as strings (exact), bytes as their SHA-256 (an audit log is no place
    for blobs, yet a change must stay visible)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)  # IntegerChoices and other int subclasses as plain numbers
    if isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return duration_iso_string(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, Promise):
        return str(value)
    return str(value)  # FieldFile and the like: their text is what the column holds


def _same(old: Any, new: Any) -> bool:
    try:
        return bool(old == new)
    except (TypeError, ValueError):  # naive against aware datetimes, say
        return bool(json_safe(old) == json_safe(new))


def _bound_fields() -> dict[str, Any]:
    """Who and which request, as bound now: read when the change is made, not when the
    transaction commits, by which time the request may be over."""
    bound = context.current()
    fields: dict[str, Any] = {k: bound[k] for k in _FROM_CONTEXT if k in bound}
    fields["actor"] = bound.get("actor") or dict(ANONYMOUS)
    return fields


class ModelTracker:
    """Records the changes of one model's tracked fields; made by `register`."""

    __slots__ = ("_by_name", "client", "fields", "label", "model")

    def __init__(self, model: type[Any], fields: Sequence[Any], client: AuditEmitter) -> None:
        self.model = model
        self.label: str = model._meta.label_lower
        self.fields = tuple(fields)
        self.client = client
        # update_fields, update() and bulk_update() may name a field or its column attribute
        self._by_name = {f.name: f for f in fields} | {f.attname: f for f in fields}

    def connect(self) -> None:
        uid = f"auditkeep:{self.label}"
        signals.pre_save.connect(self._pre_save, sender=self.model, weak=False, dispatch_uid=uid)
        signals.post_save.connect(self._post_save, sender=self.model, weak=False,
                                  dispatch_uid=uid)
        signals.post_delete.connect(self._post_delete, sender=self.model, weak=False,
                                    dispatch_uid=uid)

    def disconnect(self) -> None:
        uid = f"auditkeep:{self.label}"
        for signal in (signals.pre_save, signals.post_save, signals.post_delete):
            signal.disconnect(sender=self.model, dispatch_uid=uid)

    def fields_for(self, names: Iterable[str] | None) -> list[Any]:
        """The tracked fields among `names` (all of them for None), in model order."""
        if names is None:
            return list(self.fields)
        wanted = {self._by_name[n] for n in names if n in self._by_name}
        return [f for f in self.fields if f in wanted]

    # -- save() and delete(), through signals ------------------------------------------

    def _pre_save(self, sender: Any, instance: Any, using: str,
                  update_fields: Iterable[str] | None = None, **_: Any) -> None:
        fields = self.fields_for(update_fields)
        before: Mapping[str, Any] | None = None
        pk = instance.pk
        skip = instance._state.adding and instance._meta.pk.has_default()  # an INSERT for sure
        if fields and pk is not None and not skip:
            before = (self.model._base_manager.using(using).filter(pk=pk)
                      .values(*[f.attname for f in fields]).first()) or _NO_ROW
        instance.__dict__[_BEFORE] = before

    def _post_save(self, sender: Any, instance: Any, created: bool, using: str,
                   update_fields: Iterable[str] | None = None, **_: Any) -> None:
        before = instance.__dict__.pop(_BEFORE, None)
        fields = self.fields_for(update_fields)
        if not fields:
            return
        after = self._values_of(instance, fields, using)
        verb = "create" if created else "update"
        changes = _changes(fields, None if created else before or _NO_ROW, after)
        if changes or created:
            self._schedule(using, [self._event(verb, instance.pk, changes, "save")])

    def _post_delete(self, sender: Any, instance: Any, using: str, origin: Any = None,
                     **_: Any) -> None:
        if origin is instance:
            operation = "delete"
        elif isinstance(origin, QuerySet) and origin.model is self.model:
            operation = "queryset.delete"
        else:
            operation = "cascade.delete"
        held = instance.__dict__  # deferred fields are absent; reading them would query
        changes = [{"field": f.name, "before": json_safe(held[f.attname]), "after": None}
                   for f in self.fields if held.get(f.attname) is not None]
        self._schedule(using, [self._event("delete", instance.pk, changes, operation)])

    def _values_of(self, instance: Any, fields: Sequence[Any], using: str) -> dict[str, Any]:
        """The saved values: the instance's, normalised as the field stores them, except
        expressions (F(...) + 1, database defaults), whose result only the database knows."""
        values: dict[str, Any] = {}
        unresolved = []
        for f in fields:
            if f.attname not in instance.__dict__:
                continue  # deferred, so not saved
            value = instance.__dict__[f.attname]
            if hasattr(value, "resolve_expression"):
                unresolved.append(f.attname)
                continue
            try:
                values[f.attname] = f.to_python(value)
            except (ValidationError, TypeError, ValueError):
                values[f.attname] = value
        if unresolved:
            values.update(self.model._base_manager.using(using).filter(pk=instance.pk)
                          .values(*unresolved).first() or {})
        return values

    # -- the bulk paths, through the QuerySet hooks ---------------------------------------

    def record_update(self, qs: Any, original: Callable[..., int], kwargs: dict[str, Any]
                      ) -> int:
        fields = self.fields_for(kwargs)
        if not fields:
            return original(qs, **kwargs)
        attnames = [f.attname for f in fields]
        db = _write_db(qs)
        with transaction.atomic(using=db, savepoint=False):
            rows = qs
            if connections[db].features.has_select_for_update and not qs.query.distinct:
                rows = qs.select_for_update()  # nobody changes them between read and write
            before = {row.pop("pk"): row for row in rows.values("pk", *attnames)}
            count = original(qs, **kwargs)
            # Read back by key: the update may have changed what the filter matches.
            after = self._rows(db, list(before), attnames)
        self._schedule_diffs(db, fields, before, after, "queryset.update")
        return count

    def record_bulk_update(self, qs: Any, original: Callable[..., int], objs: Iterable[Any],
                           fields: Sequence[str], batch_size: int | None) -> int:
        objs = tuple(objs)
        tracked = self.fields_for(fields)
        if not tracked or any(obj.pk is None for obj in objs):
            return original(qs, objs, fields, batch_size=batch_size)  # it raises for no pk
        attnames = [f.attname for f in tracked]
        pks = list(dict.fromkeys(obj.pk for obj in objs))
        db = _write_db(qs)
        with transaction.atomic(using=db, savepoint=False):
            before = self._rows(db, pks, attnames, lock=True)
            token = _inside_bulk.set(True)
            try:
                count = original(qs, objs, fields, batch_size=batch_size)
            finally:
                _inside_bulk.reset(token)
            after = self._rows(db, pks, attnames)
        self._schedule_diffs(db, tracked, before, after, "bulk_update")
        return count

    def record_bulk_create(self, qs: Any, original: Callable[..., list[Any]],
                           objs: Iterable[Any], args: tuple[Any, ...],
                           kwargs: dict[str, Any]) -> list[Any]:
        objs = list(objs)
        bound = _BULK_CREATE.bind(qs, objs, *args, **kwargs).arguments
        # An upsert or an ignored conflict may have created the row or not: say so.
        on_conflict = ("ignore" if bound.get("ignore_conflicts")
                       else "update" if bound.get("update_conflicts") else None)
        attnames = [f.attname for f in self.fields]
        db = _write_db(qs)
        with transaction.atomic(using=db, savepoint=False):
            created = original(qs, objs, *args, **kwargs)
            # Read back what was stored: database defaults and field conversions included.
            stored = self._rows(db, [o.pk for o in objs if o.pk is not None], attnames)
        events = []
        for obj in objs:
            values = stored.get(obj.pk) if obj.pk is not None else None
            if values is None:  # no key came back (ignore_conflicts, or no RETURNING)
                values = self._values_of(obj, self.fields, db) if obj.pk is None else {}
            event = self._event("create", obj.pk, _changes(self.fields, None, values),
                                "bulk_create", outcome="unknown" if on_conflict else "success")
            if on_conflict:
                event["metadata"]["on_conflict"] = on_conflict
            events.append(event)
        self._schedule(db, events)
        return created

    def _rows(self, db: str, pks: list[Any], attnames: list[str], *, lock: bool = False
              ) -> dict[Any, dict[str, Any]]:
        rows: dict[Any, dict[str, Any]] = {}
        manager = self.model._base_manager.db_manager(db)
        lock = lock and connections[db].features.has_select_for_update
        for i in range(0, len(pks), _CHUNK):
            qs = manager.filter(pk__in=pks[i:i + _CHUNK])
            for row in (qs.select_for_update() if lock else qs).values("pk", *attnames):
                rows[row.pop("pk")] = row
        return rows

    # -- events ---------------------------------------------------------------------------

    def _schedule_diffs(self, db: str, fields: Sequence[Any], before: Mapping[Any, Any],
                        after: Mapping[Any, Any], operation: str) -> None:
        events = []
        for pk, old in before.items():
            changes = _changes(fields, old, after.get(pk, _NO_ROW))
            if changes:
                events.append(self._event("update", pk, changes, operation))
        self._schedule(db, events)

    def _event(self, verb: str, pk: Any, changes: list[dict[str, Any]], operation: str,
               outcome: str = "success") -> dict[str, Any]:
        event: dict[str, Any] = {
            "action": f"{self.label}.{verb}",
            "outcome": outcome,
            "category": "data_change",
            "resource": {"type": self.label, "id": "unknown" if pk is None else str(pk)},
            "metadata": {"operation": operation},
        }
        if changes:
            event["changes"] = changes
        return event

    def _schedule(self, db: str, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        bound = _bound_fields()
        client = self.client

        def emit_all() -> None:
            for event in events:
                client.emit(**{**bound, **event})

        transaction.on_commit(emit_all, using=db)


def _changes(fields: Sequence[Any], before: Mapping[str, Any] | None,
             after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """[{field, before, after}] for each field whose value differs; with no `before` (a
    creation) every field that has a value."""
    out = []
    for f in fields:
        if f.attname not in after:
            continue
        new = after[f.attname]
        if before is None:
            if new is None:
                continue
            old = None
        else:
            old = before.get(f.attname)
            if f.attname in before and _same(old, new):
                continue
        out.append({"field": f.name, "before": json_safe(old), "after": json_safe(new)})
    return out


def _write_db(qs: Any) -> str:
    # What the wrapped method will write to: Django sets this flag itself in each of them.
    qs._for_write = True
    return str(qs.db)


# -- the QuerySet hooks -----------------------------------------------------------------

_BULK_CREATE = inspect.signature(QuerySet.bulk_create)


def _hook_update(original: Callable[..., int]) -> Callable[..., int]:
    def update(self: Any, **kwargs: Any) -> int:
        tracker = _trackers.get(self.model)
        if tracker is None or _inside_bulk.get():
            return original(self, **kwargs)
        return tracker.record_update(self, original, kwargs)
    return update


def _hook_bulk_update(original: Callable[..., int]) -> Callable[..., int]:
    def bulk_update(self: Any, objs: Iterable[Any], fields: Sequence[str],
                    batch_size: int | None = None) -> int:
        tracker = _trackers.get(self.model)
        if tracker is None:
            return original(self, objs, fields, batch_size=batch_size)
        return tracker.record_bulk_update(self, original, objs, fields, batch_size)
    return bulk_update


def _hook_bulk_create(original: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    def bulk_create(self: Any, objs: Iterable[Any], *args: Any, **kwargs: Any) -> list[Any]:
        tracker = _trackers.get(self.model)
        if tracker is None:
            return original(self, objs, *args, **kwargs)
        return tracker.record_bulk_create(self, original, objs, args, kwargs)
    return bulk_create


_HOOKS: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "update": _hook_update, "bulk_update": _hook_bulk_update, "bulk_create": _hook_bulk_create}


def _install_hooks() -> None:
    """Wrap the QuerySet methods once per process; unregistered models pay one dict lookup.
    `functools.wraps` keeps `alters_data`, which stops templates calling them."""
    if getattr(QuerySet, "_auditkeep_hooked", False):
        return
    for name, hook in _HOOKS.items():
        original = getattr(QuerySet, name)
        setattr(QuerySet, name, functools.wraps(original)(hook(original)))
    QuerySet._auditkeep_hooked = True


# -- registration -------------------------------------------------------------------------

def register(model: type[Any] | str, fields: Iterable[str] | None = None,
             exclude: Iterable[str] = (), client: AuditEmitter | None = None) -> ModelTracker:
    """Audit `model` (a class or "app_label.ModelName"): every concrete field but the primary
    key, or only `fields`, minus `exclude`. Proxy models are separate models to Django's
    signals and are registered separately."""
    problems: list[FieldProblem] = []
    cls = _model(model, "/model", problems)
    chosen = [] if cls is None else _tracked_fields(cls, fields, tuple(exclude), "", problems)
    if cls is not None and cls in _trackers:
        problems.append(FieldProblem("/model", f"{cls._meta.label} is already registered"))
    _raise_if(problems, f"cannot audit {model!r}")
    return _register(cls, chosen, resolve_client(client, f"register({cls._meta.label})"))


def unregister(model: type[Any]) -> None:
    """Stop auditing `model` (registered or not)."""
    tracker = _trackers.pop(model, None)
    if tracker is not None:
        tracker.disconnect()


def tracker_for(model: type[Any]) -> ModelTracker | None:
    return _trackers.get(model)


def register_from_settings(config: Any) -> list[ModelTracker]:
    """Register the models of `settings.AUDITKEEP`, checked whole: every bad entry is
    reported at once, and nothing is registered if any is bad.

    MODELS: "app_label.ModelName" or {"model": ..., "fields": [...], "exclude": [...]}.
    CLIENT: a client, a callable returning one, or the dotted path to either; by default
    `auditkeep.client.get_default_client()`."""
    problems: list[FieldProblem] = []
    if not isinstance(config, Mapping):
        problems.append(FieldProblem("", "AUDITKEEP must be a dict", "dict",
                                     type(config).__name__))
        config = {}
    problems += [FieldProblem(f"/{k}", "unknown setting", ", ".join(sorted(_SETTINGS_KEYS)), k)
                 for k in sorted(set(config) - _SETTINGS_KEYS, key=str)]
    plan: list[tuple[type[Any], list[Any]]] = []
    for i, entry in enumerate(config.get("MODELS", ())):
        where = f"/MODELS/{i}"
        spec = {"model": entry} if isinstance(entry, str) else entry
        if not isinstance(spec, Mapping) or "model" not in spec:
            problems.append(FieldProblem(where, "not a model label or a {'model': ...} dict",
                                         '"app_label.ModelName"', repr(entry)))
            continue
        problems += [FieldProblem(f"{where}/{k}", "unknown key", ", ".join(sorted(_ENTRY_KEYS)),
                                  k) for k in sorted(set(spec) - _ENTRY_KEYS, key=str)]
        cls = _model(spec["model"], f"{where}/model", problems)
        if cls is None:
            continue
        if cls in _trackers or any(cls is m for m, _ in plan):
            problems.append(FieldProblem(f"{where}/model", f"{cls._meta.label} is listed twice "
                                         "or already registered"))
        plan.append((cls, _tracked_fields(cls, spec.get("fields"), tuple(spec.get("exclude", ())),
                                          where, problems)))
    _raise_if(problems, "settings.AUDITKEEP is invalid")
    if not plan:
        return []
    client = resolve_client(_client_from(config.get("CLIENT")), "settings.AUDITKEEP")
    return [_register(cls, chosen, client) for cls, chosen in plan]


def _register(model: type[Any], fields: list[Any], client: AuditEmitter) -> ModelTracker:
    tracker = ModelTracker(model, fields, client)
    _install_hooks()
    tracker.connect()
    _trackers[model] = tracker
    return tracker


def _client_from(value: Any) -> AuditEmitter | None:
    if isinstance(value, str):
        value = import_string(value)
    if value is None or hasattr(value, "emit"):
        return value  # type: ignore[no-any-return]
    if callable(value):
        return value()  # type: ignore[no-any-return]
    raise ConfigError(f"AUDITKEEP['CLIENT'] must be a client or return one, got {value!r}")


def _model(value: Any, where: str, problems: list[FieldProblem]) -> Any:
    if isinstance(value, type) and hasattr(value, "_meta"):
        return value
    try:
        return apps.get_model(value)
    except (LookupError, ValueError, TypeError):
        problems.append(FieldProblem(where, "no such model", '"app_label.ModelName"',
                                     repr(value)))
        return None


def _tracked_fields(model: Any, fields: Iterable[str] | None, exclude: tuple[str, ...],
                    where: str, problems: list[FieldProblem]) -> list[Any]:
    concrete = {f.name: f for f in model._meta.concrete_fields}
    named = [] if fields is None else list(fields)
    for key, names in (("fields", named), ("exclude", exclude)):
        problems += [FieldProblem(f"{where}/{key}/{i}", f"{model._meta.label} has no concrete "
                                  "field of that name (many-to-many fields are not tracked)",
                                  "a concrete field", name)
                     for i, name in enumerate(names) if name not in concrete]
    if fields is None:  # generated fields follow from the others; the key names the row
        chosen = [f for f in concrete.values()
                  if not f.primary_key and not getattr(f, "generated", False)]
    else:
        chosen = [f for f in concrete.values() if f.name in named]
    chosen = [f for f in chosen if f.name not in exclude]
    if len(chosen) > _MAX_CHANGES:
        problems.append(FieldProblem(f"{where}/fields", "too many fields for one event",
                                     f"<= {_MAX_CHANGES}", str(len(chosen))))
    return chosen


def _raise_if(problems: list[FieldProblem], summary: str) -> None:
    if problems:
        lines = "; ".join(f"{p.pointer or '/'}: {p.detail}"
                          + (f" (expected {p.expected}, got {p.actual})" if p.expected else "")
                          for p in problems)
        raise ConfigError(f"{summary}: {lines}", problems=problems)
