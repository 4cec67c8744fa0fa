"""Retention policies: how many days each category of a tenant's events is kept.

A policy is built from up to three layers, most specific first: the tenant's stored
policy (`PUT /v1/retention`), the tenant's section of the configuration file
(`retention.tenants.T`), and the file's global `retention` section. A category named
in any layer takes its days from the most specific layer naming it; a category no
layer names takes the `default` of the most specific layer that sets one; with no
default anywhere, events are kept forever. `GET /v1/retention` shows, for every part,
the layer it came from.

Age is measured on `received`, the time the server assigned when it accepted the
event: a producer sets `time` to anything it likes, so it could keep an event forever
or have it purged at once. Days are whole UTC days: an event received on day D with
`90d` goes in the first pass on or after day D + 91, 00:00 UTC.

A tenant's `_access` log (who read what) follows the tenant's policy: its records have
category `data_access`, so `categories.data_access` decides how long they stay.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import orjson

from auditkeep.errors import FieldProblem, ValidationError
from auditkeep.pipeline.schema import Category

#: The event categories of schema v1: the keys a policy may name.
CATEGORIES: tuple[str, ...] = get_args(Category)
MAX_DAYS = 36_525  # 100 years: anything longer is a typo for "forever"
FOREVER_WORDS = ("forever", "never")
_DAYS = re.compile(r"^(\d{1,6})([dwy])$")
_UNIT_DAYS = {"d": 1, "w": 7, "y": 365}
DAYS_HELP = "a number of days (400, 400d, 12w, 3y) or forever/null"
LAYER_KEYS = ("default", "categories", "require_archive")


@dataclass(frozen=True, slots=True)
class Keep:
    """How long: `days` whole days, or forever (None)."""

    days: int | None

    def to_json(self) -> int | None:
        return self.days

    def __str__(self) -> str:
        return "forever" if self.days is None else f"{self.days}d"


def parse_days(value: Any) -> tuple[Keep | None, str | None]:
    """A retention period from configuration or a request: (Keep, None), or (None, why)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in FOREVER_WORDS):
        return Keep(None), None
    days: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        days = value
    elif isinstance(value, str):
        m = _DAYS.match(value.strip().lower())
        if m:
            days = int(m.group(1)) * _UNIT_DAYS[m.group(2)]
        elif value.strip().isdigit():
            days = int(value.strip())
    if days is None:
        return None, f"expected {DAYS_HELP}, got {_show(value)}"
    if not 1 <= days <= MAX_DAYS:
        return None, f"expected from 1 to {MAX_DAYS} days, got {days}"
    return Keep(days), None


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


@dataclass(frozen=True, slots=True)
class Layer:
    """One source of retention settings, holding only what it sets."""

    default: Keep | None = None  # None: not set here (Keep(None): forever)
    categories: Mapping[str, Keep] = field(default_factory=dict)
    require_archive: bool | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.default is not None:
            out["default"] = self.default.to_json()
        if self.categories:
            out["categories"] = {k: v.to_json() for k, v in sorted(self.categories.items())}
        if self.require_archive is not None:
            out["require_archive"] = self.require_archive
        return out


Where = tuple[str, ...]  # a path into the data, as the configuration checker takes it


def parse_layer(value: Any, at: Where, problems: list[tuple[Where, str]],
                allowed: tuple[str, ...] = LAYER_KEYS) -> Layer:
    """A layer from JSON or YAML data; each problem as (path under `at`, message).
    `allowed`: the keys the mapping may have (a section may allow a few more)."""
    if value is None:
        return Layer()
    if not isinstance(value, Mapping):
        problems.append((at, f"expected a mapping with {', '.join(LAYER_KEYS)}, got "
                             f"{_show(value)}"))
        return Layer()
    for key in value:
        if key not in allowed:
            problems.append(((*at, str(key)), f"unknown key (expected one of "
                                              f"{', '.join(allowed)})"))
    default = None
    if "default" in value:
        default, why = parse_days(value["default"])
        if why:
            problems.append(((*at, "default"), why))
    categories: dict[str, Keep] = {}
    cats = value.get("categories")
    if cats is not None and not isinstance(cats, Mapping):
        problems.append(((*at, "categories"), f"expected a mapping of category to days, "
                                              f"got {_show(cats)}"))
    elif cats is not None:
        for name, days in cats.items():
            here = (*at, "categories", str(name))
            if name not in CATEGORIES:
                problems.append((here, f"unknown category {name!r} (expected one of "
                                       f"{', '.join(CATEGORIES)})"))
                continue
            keep, why = parse_days(days)
            if keep is None:
                problems.append((here, why or "invalid"))
            else:
                categories[str(name)] = keep
    archive = value.get("require_archive")
    if archive is not None and not isinstance(archive, bool):
        problems.append(((*at, "require_archive"), f"expected true or false, got "
                                                   f"{_show(archive)}"))
        archive = None
    return Layer(default, categories, archive)


def layer_from_body(raw: bytes) -> Layer:
    """The body of `PUT /v1/retention`, every bad field named (`/body/categories/auth`)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"retention policy: not JSON: {exc}", problems=[
            FieldProblem("/body", "not JSON", "a JSON object", str(exc))]) from None
    if not isinstance(value, dict):
        raise ValidationError("retention policy: expected a JSON object", problems=[
            FieldProblem("/body", "expected a JSON object with default, categories, "
                         "require_archive", "an object", _show(value))])
    problems: list[tuple[Where, str]] = []
    layer = parse_layer(value, ("body",), problems)
    if problems:
        found = [FieldProblem("".join("/" + _escape(p) for p in at), m) for at, m in problems]
        raise ValidationError(
            f"retention policy: {found[0].pointer}: {found[0].detail}"
            + (f" (+{len(found) - 1} more)" if len(found) > 1 else ""), problems=found)
    return layer


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")  # RFC 6901


def layer_from_stored(body: str) -> Layer:
    """A stored policy (written by `layer_from_body`'s caller, so known good)."""
    problems: list[tuple[Where, str]] = []
    return parse_layer(orjson.loads(body), (), problems)


# -- the effective policy -----------------------------------------------------------------

#: Where a part of the effective policy came from.
SOURCE_API = "api"  # PUT /v1/retention
SOURCE_TENANT = "config.tenant"  # retention.tenants.T in the file
SOURCE_GLOBAL = "config"  # retention in the file
SOURCE_BUILTIN = "builtin"  # nothing set: forever; require_archive when an archive is set


@dataclass(frozen=True, slots=True)
class Part:
    keep: Keep
    source: str


@dataclass(frozen=True, slots=True)
class Policy:
    """The effective retention policy of one tenant."""

    tenant: str
    default: Part
    categories: Mapping[str, Part]  # every category of CATEGORIES
    require_archive: bool
    require_archive_source: str

    def keep(self, category: str) -> Keep:
        part = self.categories.get(category)
        return part.keep if part is not None else self.default.keep

    def purges_anything(self) -> bool:
        return any(p.keep.days is not None for p in self.categories.values())

    def cutoffs(self, now: datetime) -> dict[str, str]:
        """Category -> the `received` text below which its events go (categories kept
        forever are absent). Cut at 00:00 UTC of today minus the days."""
        today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        out = {}
        for name, part in self.categories.items():
            if part.keep.days is not None:
                out[name] = _stamp(today - timedelta(days=part.keep.days))
        return out

    def summary(self) -> dict[str, Any]:
        """The policy as it goes into a purge record: days by category (null: forever)."""
        return {"categories": {k: p.keep.to_json() for k, p in sorted(self.categories.items())},
                "require_archive": self.require_archive}

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "default": {"days": self.default.keep.to_json(), "source": self.default.source},
            "categories": {k: {"days": p.keep.to_json(), "source": p.source}
                           for k, p in sorted(self.categories.items())},
            "require_archive": {"value": self.require_archive,
                                "source": self.require_archive_source},
        }


def _stamp(dt: datetime) -> str:
    # format_time's form, so `received` texts compare with it as text.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031
        dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond)


def effective(tenant: str, layers: list[tuple[Layer, str]], *, archive: bool) -> Policy:
    """Resolve `layers` ((layer, source), most specific first) into a tenant's policy.
    `archive`: whether a cold archive is configured (then purge waits for it by default)."""
    default = next((Part(layer.default, src) for layer, src in layers
                    if layer.default is not None), Part(Keep(None), SOURCE_BUILTIN))
    categories = {}
    for name in CATEGORIES:
        categories[name] = next((Part(layer.categories[name], src) for layer, src in layers
                                 if name in layer.categories), default)
    require, src = next(((layer.require_archive, s) for layer, s in layers
                         if layer.require_archive is not None), (archive, SOURCE_BUILTIN))
    return Policy(tenant, default, categories, require and archive, src)


__all__ = ["CATEGORIES", "Keep", "Layer", "Part", "Policy", "effective", "layer_from_body",
           "layer_from_stored", "parse_days", "parse_layer"]
