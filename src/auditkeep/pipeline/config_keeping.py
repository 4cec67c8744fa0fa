"""The configuration file's sections for keeping the record over years: `retention`
(policies per tenant and category), `archive` (the cold tier) and `witnesses`.

pipeline/config.py calls these parsers with its checker `c` (`c.fail`, `c.keys`,
`c.mapping`, `c.text`, `c.number`, `c.boolean`, `c.choice`), so every problem is
reported with its path and line like the rest of the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from auditkeep.detect.rules import parse_duration
from auditkeep.retention.policy import (
    LAYER_KEYS,
    SOURCE_GLOBAL,
    SOURCE_TENANT,
    Layer,
    parse_layer,
)

if TYPE_CHECKING:
    from auditkeep.pipeline.config import _Check


DEFAULT_RETENTION_SCHEDULE = 3600.0  # seconds between retention passes


@dataclass(frozen=True, slots=True)
class RetentionConfig:
    """`retention:` (docs/retention.md): the global layer of every tenant's policy, a
    layer per tenant, and how often the retention job runs (None: never on its own)."""

    schedule: float | None = DEFAULT_RETENTION_SCHEDULE
    defaults: Layer = field(default_factory=Layer)
    tenants: Mapping[str, Layer] = field(default_factory=dict)

    def layers(self, tenant: str) -> list[tuple[Layer, str]]:
        """The file's layers for `tenant`, most specific first (retention/policy.py)."""
        out = [(self.defaults, SOURCE_GLOBAL)]
        mine = self.tenants.get(tenant)
        return [(mine, SOURCE_TENANT), *out] if mine is not None else out


@dataclass(frozen=True, slots=True)
class ArchiveConfig:
    """`archive:` (docs/archive.md): where sealed ranges go, how wide they are and how
    often the archiver looks for due ones. The S3 settings override the AWS_* variables
    of the environment; none of them is needed for a local path or file:// URL."""

    url: str
    range: int = 65_536  # entries per sealed range: a power of two, at least 256
    schedule: float = 3600.0  # seconds between archiver passes (DEFAULT_ARCHIVE_* below)
    endpoint: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    allow_http: bool = False

    def store_options(self) -> dict[str, Any]:
        """What archive/objects.py passes to obstore (only what is set)."""
        out: dict[str, Any] = {}
        for key in ("endpoint", "region", "access_key_id", "secret_access_key"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.allow_http:
            out["allow_http"] = True
        return out


@dataclass(frozen=True, slots=True)
class WitnessConfig:
    """One entry of `witnesses:` (docs/witnesses.md): a C2SP tlog-witness at `url`
    (its submission prefix) whose cosignatures verify with `vkey` (alg 0x04). `name`
    labels it in status (default: the vkey's key name); `interval` is the least time
    between two pushes of one log; `logs` limits which logs are pushed (empty: all)."""

    name: str
    url: str
    vkey: str
    timeout: float = 10.0
    interval: float = 5.0
    logs: tuple[str, ...] = ()


RETENTION_KEYS = ("schedule", "tenants", *LAYER_KEYS)
_TENANT_NAME = re.compile(r"^[a-z0-9-]{1,63}$")


def parse_retention(c: _Check, value: Any) -> RetentionConfig:
    if value is None:
        return RetentionConfig()
    at = ("retention",)
    obj = c.mapping(at, value, "a mapping (schedule, default, categories, require_archive, "
                               "tenants)")
    problems: list[tuple[tuple[str, ...], str]] = []
    defaults = parse_layer(obj, at, problems, RETENTION_KEYS)
    schedule: float | None = DEFAULT_RETENTION_SCHEDULE
    if "schedule" in obj:
        raw = obj["schedule"]
        if raw is False or (isinstance(raw, str) and raw.strip().lower() == "off"):
            schedule = None
        else:
            seconds = parse_duration(raw)
            if seconds is None or seconds < 60:
                c.fail((*at, "schedule"), f"expected a duration of at least 1m (10m, 1h, "
                       f"1d) or off, got {raw!r}")
            else:
                schedule = seconds
    tenants: dict[str, Layer] = {}
    for name, item in c.mapping((*at, "tenants"), obj.get("tenants"),
                                "a mapping of tenant names").items():
        here = (*at, "tenants", str(name))
        if not isinstance(name, str) or not _TENANT_NAME.match(name):
            c.fail(here, f"not a tenant name (1 to 63 of a-z, 0-9 and -), got {name!r}")
            continue
        tenants[name] = parse_layer(item, here, problems)
    for where, message in problems:
        c.fail(where, message)
    return RetentionConfig(schedule, defaults, tenants)


ARCHIVE_KEYS = ("url", "range", "schedule", "endpoint", "region", "access_key_id",
                "secret_access_key", "allow_http")
MIN_ARCHIVE_RANGE = 256  # one tile: a sealed range is at least one whole bundle row
MAX_ARCHIVE_RANGE = 1 << 24
DEFAULT_ARCHIVE_RANGE = 65_536
DEFAULT_ARCHIVE_SCHEDULE = 3600.0


def parse_archive(c: _Check, value: Any) -> ArchiveConfig | None:
    if value is None:
        return None
    at = ("archive",)
    obj = c.mapping(at, value, "a mapping (url, range, schedule, ...)")
    c.keys(at, obj, ARCHIVE_KEYS)
    url = c.text((*at, "url"), obj.get("url"), required=True)
    if url is not None and "://" in url and not url.startswith(("file://", "s3://")):
        c.fail((*at, "url"), f"expected a path, file://… or s3://bucket/prefix, got {url!r}")
    width = DEFAULT_ARCHIVE_RANGE
    if "range" in obj:
        got = c.number((*at, "range"), obj["range"], MIN_ARCHIVE_RANGE, MAX_ARCHIVE_RANGE)
        if got is not None:
            if got != int(got) or int(got) & (int(got) - 1):
                c.fail((*at, "range"), f"expected a power of two (256, 4096, 65536, ...), "
                       f"got {obj['range']!r}")
            else:
                width = int(got)
    schedule = DEFAULT_ARCHIVE_SCHEDULE
    if "schedule" in obj:
        seconds = parse_duration(obj["schedule"])
        if seconds is None or seconds < 1:
            c.fail((*at, "schedule"), f"expected a duration of at least 1s (10m, 1h, 1d), "
                   f"got {obj['schedule']!r}")
        else:
            schedule = seconds
    texts = {k: c.text((*at, k), obj.get(k)) for k in
             ("endpoint", "region", "access_key_id", "secret_access_key")}
    allow_http = c.boolean((*at, "allow_http"), obj.get("allow_http"), False)
    if url is None:
        return None
    return ArchiveConfig(url, width, schedule, allow_http=allow_http, **texts)


WITNESS_KEYS = ("name", "url", "vkey", "timeout", "interval", "logs")
_LOG_NAME = re.compile(r"^[a-z0-9-]{1,63}(\._access)?$")


def parse_witnesses(c: _Check, value: Any) -> tuple[WitnessConfig, ...]:
    from auditkeep.errors import NoteError
    from auditkeep.witness.cosignature import WitnessVerifier

    if value is None:
        return ()
    if not isinstance(value, list):
        c.fail(("witnesses",), "expected a list of {url, vkey, name?, timeout?, interval?}, "
               f"got {'a mapping' if isinstance(value, Mapping) else repr(value)}")
        return ()
    out: list[WitnessConfig] = []
    names: dict[str, int] = {}
    keys: dict[str, int] = {}
    for i, item in enumerate(value):
        at = ("witnesses", i)
        if not isinstance(item, Mapping):
            c.fail(at, "expected a mapping with url and vkey")
            continue
        c.keys(at, item, WITNESS_KEYS)
        url = c.text((*at, "url"), item.get("url"), required=True)
        if url is not None and not url.startswith(("http://", "https://")):
            c.fail((*at, "url"), f"expected an http:// or https:// URL, got {url!r}")
            url = None
        vkey = c.text((*at, "vkey"), item.get("vkey"), required=True)
        verifier = None
        if vkey is not None:
            try:
                verifier = WitnessVerifier.parse(vkey.strip())
            except NoteError as exc:
                c.fail((*at, "vkey"), exc.detail)
        name = c.text((*at, "name"), item.get("name"))
        timeout = c.number((*at, "timeout"), item.get("timeout", 10.0), 0.1, 300)
        interval = c.number((*at, "interval"), item.get("interval", 5.0), 0.1, 86400)
        logs = _witnessed_logs(c, (*at, "logs"), item.get("logs"))
        if verifier is None or url is None or timeout is None or interval is None:
            continue
        label = name or verifier.name
        if label in names:
            c.fail((*at, "name"), f"witness name {label!r} is also witnesses[{names[label]}]'s")
            continue
        if verifier.to_string() in keys:
            c.fail((*at, "vkey"), f"the same key as witnesses[{keys[verifier.to_string()]}]")
            continue
        names[label] = i
        keys[verifier.to_string()] = i
        out.append(WitnessConfig(label, url, verifier.to_string(), timeout, interval, logs))
    return tuple(out)


def _witnessed_logs(c: _Check, at: tuple[str | int, ...], value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        c.fail(at, "expected a non-empty list of log names (tenant, or tenant._access)")
        return ()
    for i, name in enumerate(value):
        if not isinstance(name, str) or not _LOG_NAME.match(name):
            c.fail((*at, i), f"expected a log name ([a-z0-9-]{{1,63}}, optionally followed "
                   f"by ._access), got {name!r}")
    return tuple(str(n) for n in value)
