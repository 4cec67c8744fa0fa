"""Syslog messages (RFC 5424 and RFC 3164) as schema v1 events.

Written by hand: the PyPI parsers for RFC 5424 are unmaintained, and the grammar is a
handful of space-separated fields plus structured data. Parsing never fails: a line that
fits neither RFC becomes an event with the whole line as its message, and what could not
be read is named in `metadata.missing` (a source must map what it can and never drop).

Mapping (docs/sources.md#syslog): structured data element `audit@<any PEN>` carries
schema v1 fields (`action`, `outcome`, `category`, `actor`, `actor.type`, `resource.type`,
`resource.id`, `reason`, `request_id`, `trace_id`, `id`); without it the action is
`syslog.<app>` and the actor is the sending host. Other SD elements go to metadata.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from auditkeep.errors import ValidationError
from auditkeep.pipeline.schema import ACTION_PATTERN
from auditkeep.pipeline.validate import decode_events

SEVERITIES = ("critical", "critical", "critical", "critical", "warning", "notice", "info",
              "info")  # RFC 5424 severities 0..7: emerg, alert, crit, err, warning, ...
_5424 = re.compile(
    rb"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<proc>\S+) "
    rb"(?P<msgid>\S+) (?P<rest>.*)$", re.S)
_3164 = re.compile(
    rb"^<(?P<pri>\d{1,3})>(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) "
    rb"(?P<tag>[^:\[\s]+)(?:\[(?P<proc>[^\]]*)\])?:? ?(?P<msg>.*)$", re.S)
_SD_ELEMENT = re.compile(r'\[(?P<id>[^\s\]=]+)(?P<params>(?: [^\s=\]]+="(?:[^"\\]|\\.)*")*)\]')
_SD_PARAM = re.compile(r'([^\s=\]]+)="((?:[^"\\]|\\.)*)"')
_SEGMENT = re.compile(r"[^A-Za-z0-9_-]+")
_ACTION = re.compile(ACTION_PATTERN)
_OUTCOMES = {"success", "failure", "denied", "unknown"}
_ACTOR_TYPES = {"user", "service", "system", "anonymous"}
MAX_MESSAGE = 16 * 1024
MAX_REASON = 1024  # schema v1's limit for `reason`


def map_message(raw: bytes, *, received: datetime | None = None,
                peer: str | None = None) -> dict[str, Any]:
    """One syslog message (without framing) in, one schema v1 event out."""
    text_line = raw.rstrip(b"\r\n\x00")  # SysLogHandler ends messages with a NUL
    missing: list[str] = []
    if m := _5424.match(text_line):
        ev, sd = _from_5424(m, missing, received)
    elif m := _3164.match(text_line):
        ev, sd = _from_3164(m, missing, received)
    else:
        ev, sd = _unparsed(text_line, missing)
    if peer:  # the sending host is the actor unless the message names one
        ev["metadata"]["peer"] = peer
        ev["actor"]["ip"] = peer.rsplit(":", 1)[0].strip("[]")[:64]
    audit = sd.pop("audit", None)
    if audit is not None:
        _apply_audit(ev, audit, missing)
    if sd:
        ev["metadata"]["sd"] = sd
    ev.setdefault("id", "syslog:" + hashlib.sha256(text_line).hexdigest()[:32])
    _drop_invalid(ev, missing)
    if missing:
        ev["metadata"]["missing"] = missing
    return ev


def _drop_invalid(ev: dict[str, Any], missing: list[str]) -> None:
    """Leave out (and name) any field schema v1 refuses, e.g. an over-long hostname or a
    bad `audit@` value: the message is still recorded, never refused."""
    for _ in range(3):
        try:
            decode_events(orjson.dumps(ev), ndjson=False)
            return
        except ValidationError as exc:
            for p in exc.problems:
                top = p.pointer.strip("/").split("/", 1)[0]
                if top in ("action", "actor", "outcome"):
                    continue
                if top == "id":
                    ev["id"] = "syslog:" + hashlib.sha256(orjson.dumps(ev)).hexdigest()[:32]
                else:
                    ev.pop(top, None)
                missing.append(f"{top} (invalid)")


def _from_5424(m: re.Match[bytes], missing: list[str], received: datetime | None
               ) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    pri = int(m["pri"])
    host, app, proc, msgid = (_nil(m[k]) for k in ("host", "app", "proc", "msgid"))
    sd, msg = _structured_data(m["rest"].decode("utf-8", "replace"))
    if msg.startswith("\ufeff"):  # RFC 5424 §6.4: a BOM marks a UTF-8 message
        msg = msg[1:]
    ev = _base(pri, host, app, msg, missing)
    ts = _nil(m["ts"])
    if ts is not None:
        try:
            ev["time"] = _iso(datetime.fromisoformat(ts.replace("Z", "+00:00")))
        except ValueError:
            missing.append("time")
    else:
        missing.append("time")
    if proc is not None:
        ev["metadata"]["procid"] = proc
    if msgid is not None:
        ev["metadata"]["msgid"] = msgid
        ev["action"] = _action(app, msgid)
    ev["metadata"]["format"] = "rfc5424"
    return ev, sd


def _from_3164(m: re.Match[bytes], missing: list[str], received: datetime | None
               ) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    tag = m["tag"].decode("utf-8", "replace")
    msg = m["msg"].decode("utf-8", "replace")
    ev = _base(int(m["pri"]), m["host"].decode("utf-8", "replace"), tag, msg, missing)
    # RFC 3164 has no year and no zone: the receive time's year, UTC (documented).
    now = received or datetime.now(UTC)
    try:
        stamp = datetime.strptime(f"{now.year} {m['ts'].decode()}", "%Y %b %d %H:%M:%S")
        ev["time"] = _iso(stamp.replace(tzinfo=UTC))
    except ValueError:
        missing.append("time")
    if m["proc"]:
        ev["metadata"]["procid"] = m["proc"].decode("utf-8", "replace")
    ev["metadata"]["format"] = "rfc3164"
    return ev, {}


def _unparsed(line: bytes, missing: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    pri = 13  # RFC 3164 §4.3.3: user.notice when there is no PRI
    m = re.match(rb"^<(\d{1,3})>", line)
    if m:
        pri, line = int(m[1]), line[m.end():]
    ev = _base(pri, None, None, line.decode("utf-8", "replace"), missing)
    ev["metadata"]["format"] = "unknown"
    missing.append("time")
    return ev, {}


def _base(pri: int, host: str | None, app: str | None, msg: str, missing: list[str]
          ) -> dict[str, Any]:
    facility, severity = divmod(min(pri, 191), 8)
    if host is None:
        missing.append("hostname")
    ev: dict[str, Any] = {
        "action": _action(app, None),
        "actor": {"id": (host or "unknown")[:256], "type": "system"},
        "outcome": "unknown",
        "category": "system",
        "severity": SEVERITIES[severity],
        "metadata": {"facility": facility, "severity": severity},
    }
    source = {k: v for k, v in (("host", host), ("service", app)) if v}
    if source:
        ev["source"] = source
    text = msg.strip()
    if text:
        ev["reason"] = text[:MAX_REASON]
        if len(text) > MAX_REASON:  # the whole message stays, up to MAX_MESSAGE
            ev["metadata"]["message"] = text[:MAX_MESSAGE]
            if len(text) > MAX_MESSAGE:
                ev["metadata"]["truncated"] = ["message"]
    return ev


def _apply_audit(ev: dict[str, Any], audit: dict[str, str], missing: list[str]) -> None:
    """Fields from an `audit@PEN` element, each checked; a bad one is left out and named."""
    ev["category"] = "data_change"  # schema v1's default once the message is an audit record
    action = audit.get("action")
    if action is not None:
        if _ACTION.fullmatch(action):
            ev["action"] = action
        else:
            missing.append("audit.action")
    outcome = audit.get("outcome")
    if outcome in _OUTCOMES:
        ev["outcome"] = outcome
    if "actor" in audit:
        kind = audit.get("actor.type", "user")
        ev["metadata"]["host_actor"] = ev["actor"]["id"]
        ev["actor"] = {"id": audit["actor"][:256] or "unknown",
                       "type": kind if kind in _ACTOR_TYPES else "user"}
    if "resource.type" in audit and "resource.id" in audit:
        ev["resource"] = {"type": audit["resource.type"], "id": audit["resource.id"]}
    for name in ("category", "reason", "request_id", "trace_id", "id"):
        if name in audit:
            ev[name] = audit[name]
    extra = {k: v for k, v in audit.items() if k not in {
        "action", "outcome", "actor", "actor.type", "resource.type", "resource.id",
        "category", "reason", "request_id", "trace_id", "id"}}
    if extra:
        ev["metadata"]["audit"] = extra


def _structured_data(rest: str) -> tuple[dict[str, dict[str, str]], str]:
    if rest.startswith("-"):
        return {}, rest[2:] if rest.startswith("- ") else rest[1:]
    sd: dict[str, dict[str, str]] = {}
    pos = 0
    while pos < len(rest) and rest[pos] == "[":
        m = _SD_ELEMENT.match(rest, pos)
        if m is None:
            break  # malformed SD: the rest is the message
        params = {k: _unescape(v) for k, v in _SD_PARAM.findall(m["params"])}
        sd_id = m["id"]
        sd[sd_id.split("@", 1)[0] if sd_id.startswith("audit@") else sd_id] = params
        pos = m.end()
    msg = rest[pos:]
    return sd, msg[1:] if msg.startswith(" ") else msg


def _unescape(v: str) -> str:
    return re.sub(r'\\(["\\\]])', r"\1", v)


def _nil(value: bytes) -> str | None:
    return None if value == b"-" else value.decode("utf-8", "replace")


def _action(app: str | None, msgid: str | None) -> str:
    parts = ["syslog"] + [_SEGMENT.sub("_", p).strip("_") or "x" for p in (app, msgid) if p]
    return ".".join(parts)


def _iso(d: datetime) -> str:
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
