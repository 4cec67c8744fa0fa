"""Where alerts go and how loud they are: `alerting.yaml` in the rules directory.

Sinks are named; routes send an alert to sinks by its level, tags, rule and tenant
(first match wins unless `continue: true`); suppression windows hold delivery during
maintenance (the alert is still stored, marked `suppressed_by`); alerts with the same
dedup key (rule + group) within `group_window` fold into the open one. The file is
checked whole: every problem is reported with its path and line.

Page-vs-ticket is a routing decision, written as routes::

    sinks:
      pager: {type: pagerduty, routing_key_env: AK_PD_KEY}     # wakes someone: a page
      slack: {type: slack, url: https://hooks.slack.com/services/T/B/X}
      tickets: {type: smtp, host: smtp.example.com, from: ak@example.com,
                to: [secops-queue@example.com]}                # lands in a queue: a ticket
    routes:
      - match: {levels: [critical, high], tags: [attack.*]}
        sinks: [pager, slack]
      - match: {levels: [critical, high]}                      # high but not an attack
        sinks: [slack, tickets]
      - match: {levels: [medium, low]}
        sinks: [tickets]
    suppress:
      - {name: deploy-2026-12-07, from: 2026-12-07T10:00:00Z, until: 2026-12-07T11:00:00Z}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from fnmatch import fnmatchcase
from typing import Any

import yaml

from auditkeep.detect.alerts import Alert
from auditkeep.detect.rules import LEVELS
from auditkeep.detect.rules import duration_text as parse_duration
from auditkeep.errors import ConfigError, FieldProblem

# The checker and its messages are the server configuration's, so both files read alike.
from auditkeep.pipeline.config import ConfigProblem, Parts, _Check, _show

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITIES = ("critical", "error", "warning", "info")  # PagerDuty Events API v2
DEFAULT_SEVERITY: Mapping[str, str] = {"critical": "critical", "high": "error",
                                       "medium": "warning", "low": "info",
                                       "informational": "info"}
DEFAULT_GROUP_WINDOW = 600.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def to_epoch(when: str | float | datetime) -> float:
    """An RFC 3339 time (Z or offset), a datetime or epoch seconds, as epoch seconds."""
    if isinstance(when, datetime):
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    if isinstance(when, str):
        return to_epoch(datetime.fromisoformat(when.replace("Z", "+00:00")))
    return float(when)


# -- the configuration model -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class WebhookSinkConfig:
    name: str
    url: str
    secret: str | None = None
    secret_env: str | None = None  # the secret is read from this variable when sending
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 5.0
    type: str = "webhook"


@dataclass(frozen=True, slots=True)
class SlackSinkConfig:
    name: str
    url: str
    timeout: float = 5.0
    type: str = "slack"


@dataclass(frozen=True, slots=True)
class SmtpSinkConfig:
    name: str
    host: str
    sender: str  # `from:` in the file
    to: tuple[str, ...]
    port: int = 587
    starttls: bool = True
    username_env: str | None = None
    password_env: str | None = None
    timeout: float = 10.0
    type: str = "smtp"


@dataclass(frozen=True, slots=True)
class PagerDutySinkConfig:
    name: str
    routing_key: str | None = None
    routing_key_env: str | None = None
    url: str = PAGERDUTY_URL
    timeout: float = 5.0
    type: str = "pagerduty"


SinkConfig = WebhookSinkConfig | SlackSinkConfig | SmtpSinkConfig | PagerDutySinkConfig


@dataclass(frozen=True, slots=True)
class Match:
    """Which alerts: every criterion given must hold; within one, any entry may.
    `tags` and `rules` are globs (`attack.*`); an empty match is everything."""

    levels: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()

    def __call__(self, alert: Alert) -> bool:
        return ((not self.levels or alert.level in self.levels)
                and (not self.tags or any(fnmatchcase(t, p) for t in alert.tags
                                          for p in self.tags))
                and (not self.rules or any(fnmatchcase(alert.rule, p) for p in self.rules))
                and (not self.tenants or alert.tenant in self.tenants))


@dataclass(frozen=True, slots=True)
class Route:
    match: Match
    sinks: tuple[str, ...]
    continue_: bool = False  # `continue: true`: later routes are tried too


@dataclass(frozen=True, slots=True)
class Suppression:
    """A maintenance window: matching alerts created in [start, end) are not delivered."""

    name: str
    start: float  # epoch seconds
    end: float
    match: Match = Match()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 8  # sends in all, the first included; then the delivery is dead
    backoff: float = 2.0  # before the second attempt; doubles each time
    max_backoff: float = 600.0


@dataclass(frozen=True, slots=True)
class AlertingConfig:
    """The whole file. Sinks are built from it (detect/sinks.py); it is plain data."""

    sinks: Mapping[str, SinkConfig] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    severity: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SEVERITY))
    group_window: float = DEFAULT_GROUP_WINDOW  # seconds; 0 turns grouping off
    suppress: tuple[Suppression, ...] = ()
    retry: RetryPolicy = RetryPolicy()
    ui_url: str | None = None  # links in Slack, PagerDuty and email point here

    def route(self, alert: Alert) -> list[str]:
        """The sinks an alert goes to, in route order, each once."""
        out: list[str] = []
        for r in self.routes:
            if r.match(alert):
                out.extend(s for s in r.sinks if s not in out)
                if not r.continue_:
                    break
        return out

    def suppressed_by(self, alert: Alert, now: str | float | datetime) -> str | None:
        """The name of the suppression window holding this alert at `now`, if any."""
        t = to_epoch(now)
        for s in self.suppress:
            if s.start <= t < s.end and s.match(alert):
                return s.name
        return None

    def severity_of(self, level: str) -> str:
        return self.severity.get(level, DEFAULT_SEVERITY.get(level, "warning"))


# -- reading and checking ----------------------------------------------------------------

TOP_KEYS = ("sinks", "routes", "severity", "group_window", "suppress", "retry", "ui_url")
MATCH_KEYS = ("levels", "tags", "rules", "tenants")
_SINK_KEYS = {
    "webhook": ("type", "url", "secret", "secret_env", "headers", "timeout"),
    "slack": ("type", "url", "timeout"),
    "smtp": ("type", "host", "port", "starttls", "username_env", "password_env", "from",
             "to", "timeout"),
    "pagerduty": ("type", "routing_key", "routing_key_env", "url", "timeout"),
}


def read_alerting(text: str, source_name: str = "alerting.yaml"
                  ) -> tuple[AlertingConfig | None, list[ConfigProblem]]:
    """Check an alerting file's text: the config, or None and every problem."""
    c = _Check()
    try:
        data = c.load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, [ConfigProblem(source_name, "(top)", f"not valid YAML: "
                                    f"{getattr(exc, 'problem', None) or exc}",
                                    mark.line + 1 if mark else None,
                                    mark.column + 1 if mark else None)]
    cfg = _alerting(c, data)
    problems = c.report(source_name)
    return (None if problems else cfg), problems


def parse_alerting(text: str, source_name: str = "alerting.yaml") -> AlertingConfig:
    """The alerting configuration in `text`; raises ConfigError listing every problem."""
    cfg, problems = read_alerting(text, source_name)
    if cfg is None:
        n = len(problems)
        shown = "; ".join(str(p) for p in problems)
        raise ConfigError(f"{source_name}: {n} problem{'s' if n > 1 else ''}: {shown}",
                          problems=[FieldProblem(p.pointer, p.message) for p in problems])
    return cfg


def _alerting(c: _Check, data: Any) -> AlertingConfig:
    if data is None:
        return AlertingConfig()
    if not isinstance(data, Mapping):
        c.fail((), f"expected a mapping of alerting settings, got {_show(data)}")
        return AlertingConfig()
    c.keys((), data, TOP_KEYS)
    sinks = _sinks(c, data.get("sinks"))
    routes = _routes(c, data.get("routes"), sinks)
    window = _duration(c, ("group_window",), data.get("group_window"), DEFAULT_GROUP_WINDOW,
                       zero=True)
    ui_url = _url(c, ("ui_url",), data.get("ui_url"), required=False)
    return AlertingConfig(sinks, routes, _severity(c, data.get("severity")), window,
                          _suppress(c, data.get("suppress")), _retry(c, data.get("retry")),
                          ui_url.rstrip("/") if ui_url else None)


def _duration(c: _Check, at: Parts, value: Any, default: float, *, zero: bool = False,
              number: bool = False) -> float:
    if value is None:
        return default
    if number and isinstance(value, int | float) and not isinstance(value, bool):
        got: float | None = float(value)
    else:
        got = parse_duration(value) if isinstance(value, str) else None
    if got is None or got < 0 or (got == 0 and not zero):
        c.fail(at, f"expected a duration such as 30s, 10m, 2h or 1d"
                   f"{' (or 0)' if zero else ''}, got {_show(value)}")
        return default
    return got


def _url(c: _Check, at: Parts, value: Any, *, required: bool = True) -> str | None:
    text = c.text(at, value, required=required)
    if text is not None and not re.match(r"^https?://[^\s/]+", text):
        c.fail(at, f"expected an http:// or https:// URL, got {text!r}")
        return None
    return text


def _env(c: _Check, at: Parts, value: Any) -> str | None:
    text = c.text(at, value)
    if text is not None and not _ENV.match(text):
        c.fail(at, f"expected an environment variable name, got {text!r}")
        return None
    return text


def _strings(c: _Check, at: Parts, value: Any, what: str,
             choices: tuple[str, ...] | None = None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        c.fail(at, f"expected a non-empty list of {what}, got {_show(value)}")
        return ()
    out: list[str] = []
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v or (choices is not None and v not in choices):
            want = f"one of {', '.join(choices)}" if choices else what
            c.fail((*at, i), f"expected {want}, got {_show(v)}")
        else:
            out.append(v)
    return tuple(out)


def _match(c: _Check, at: Parts, value: Any) -> Match:
    m = c.mapping(at, value, f"a mapping with {', '.join(MATCH_KEYS)}")
    c.keys(at, m, MATCH_KEYS)
    return Match(_strings(c, (*at, "levels"), m.get("levels"), "levels", LEVELS),
                 _strings(c, (*at, "tags"), m.get("tags"), "tag patterns"),
                 _strings(c, (*at, "rules"), m.get("rules"), "rule id patterns"),
                 _strings(c, (*at, "tenants"), m.get("tenants"), "tenant names"))


def _sinks(c: _Check, value: Any) -> dict[str, SinkConfig]:
    out: dict[str, SinkConfig] = {}
    for name, item in c.mapping(("sinks",), value, "a mapping of sink names").items():
        at: Parts = ("sinks", str(name))
        if not isinstance(name, str) or not _NAME.match(name):
            c.fail(at, f"expected a sink name (1 to 63 of A-Z, a-z, 0-9, _.-), got {name!r}")
            continue
        opts = c.mapping(at, item, "a mapping of sink settings with a type")
        kind = opts.get("type")
        if kind not in _SINK_KEYS:
            c.fail((*at, "type"), f"expected one of {', '.join(_SINK_KEYS)}, got {_show(kind)}"
                   if kind is not None else f"required: one of {', '.join(_SINK_KEYS)}")
            continue
        c.keys(at, opts, _SINK_KEYS[kind])
        sink = _sink(c, at, name, kind, opts)
        if sink is not None:
            out[name] = sink
    return out


def _sink(c: _Check, at: Parts, name: str, kind: str, o: Mapping[Any, Any]
          ) -> SinkConfig | None:
    before = len(c.problems)
    timeout = _duration(c, (*at, "timeout"), o.get("timeout"), 10.0 if kind == "smtp" else 5.0,
                        number=True)
    sink: SinkConfig | None = None
    if kind in ("webhook", "slack"):
        url = _url(c, (*at, "url"), o.get("url"))
        if kind == "slack":
            sink = SlackSinkConfig(name, url or "", timeout)
        else:
            secret = c.text((*at, "secret"), o.get("secret"))
            secret_env = _env(c, (*at, "secret_env"), o.get("secret_env"))
            if secret is not None and secret_env is not None:
                c.fail((*at, "secret"), "give secret or secret_env, not both")
            headers: dict[str, str] = {}
            for k, v in c.mapping((*at, "headers"), o.get("headers"),
                                  "a mapping of header names to values").items():
                if not isinstance(k, str) or not _HEADER.match(k) or \
                        k.lower().startswith("x-auditkeep-"):
                    c.fail((*at, "headers", str(k)), "expected a header name (not X-Auditkeep-*)")
                elif not isinstance(v, str | int) or isinstance(v, bool) or "\n" in str(v):
                    c.fail((*at, "headers", k), f"expected a one-line value, got {_show(v)}")
                else:
                    headers[k] = str(v)
            sink = WebhookSinkConfig(name, url or "", secret, secret_env, headers, timeout)
    elif kind == "smtp":
        host = c.text((*at, "host"), o.get("host"), required=True)
        port = o.get("port", 587)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            c.fail((*at, "port"), f"expected a port from 1 to 65535, got {_show(port)}")
            port = 587
        sender = c.text((*at, "from"), o.get("from"), required=True)
        to = _strings(c, (*at, "to"), o.get("to"), "email addresses")
        if o.get("to") is None:
            c.fail((*at, "to"), "required: a list of email addresses")
        for j, addr in enumerate(to):
            if "@" not in addr:
                c.fail((*at, "to", j), f"expected an email address, got {addr!r}")
        sink = SmtpSinkConfig(name, host or "", sender or "", to, port,
                              c.boolean((*at, "starttls"), o.get("starttls"), True),
                              _env(c, (*at, "username_env"), o.get("username_env")),
                              _env(c, (*at, "password_env"), o.get("password_env")), timeout)
    else:
        key = c.text((*at, "routing_key"), o.get("routing_key"))
        key_env = _env(c, (*at, "routing_key_env"), o.get("routing_key_env"))
        if (key is None) == (key_env is None) and len(c.problems) == before:
            c.fail(at, "give one of routing_key or routing_key_env")
        url = _url(c, (*at, "url"), o.get("url"), required=False) or PAGERDUTY_URL
        sink = PagerDutySinkConfig(name, key, key_env, url, timeout)
    return sink if len(c.problems) == before else None


def _routes(c: _Check, value: Any, sinks: Mapping[str, SinkConfig]) -> tuple[Route, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        c.fail(("routes",), f"expected a list of routes, got {_show(value)}")
        return ()
    out: list[Route] = []
    for i, item in enumerate(value):
        at: Parts = ("routes", i)
        r = c.mapping(at, item, "a mapping with match, sinks and continue")
        c.keys(at, r, ("match", "sinks", "continue"))
        names = _strings(c, (*at, "sinks"), r.get("sinks"), "sink names")
        if r.get("sinks") is None:
            c.fail((*at, "sinks"), "required: a list of sink names")
        for j, s in enumerate(names):
            if s not in sinks and not any(p[:2] == ("sinks", s) for p, _ in c.problems):
                c.fail((*at, "sinks", j), f"no sink named {s!r} (sinks: "
                                          f"{', '.join(sinks) or 'none'})")
        out.append(Route(_match(c, (*at, "match"), r.get("match")), names,
                         c.boolean((*at, "continue"), r.get("continue"), False)))
    return tuple(out)


def _severity(c: _Check, value: Any) -> dict[str, str]:
    out = dict(DEFAULT_SEVERITY)
    for level, sev in c.mapping(("severity",), value, "a mapping of levels to severities"
                                ).items():
        if level not in LEVELS:
            c.fail(("severity", str(level)), f"expected a level ({', '.join(LEVELS)}), "
                                             f"got {level!r}")
        elif sev not in SEVERITIES:
            c.fail(("severity", level), f"expected one of {', '.join(SEVERITIES)}, "
                                        f"got {_show(sev)}")
        else:
            out[level] = sev
    return out


def _time(c: _Check, at: Parts, value: Any) -> float | None:
    if value is None:
        c.fail(at, "required: an RFC 3339 time such as 2026-12-07T10:00:00Z")
        return None
    when: datetime | None = None
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            when = None
    if when is None or when.tzinfo is None:
        shown = _show(str(value) if isinstance(value, date) else value)
        c.fail(at, f"expected an RFC 3339 time with Z or an offset, such as "
                   f"2026-12-07T10:00:00Z, got {shown}")
        return None
    return when.timestamp()


def _suppress(c: _Check, value: Any) -> tuple[Suppression, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        c.fail(("suppress",), f"expected a list of suppression windows, got {_show(value)}")
        return ()
    out: list[Suppression] = []
    names: set[str] = set()
    for i, item in enumerate(value):
        at: Parts = ("suppress", i)
        s = c.mapping(at, item, "a mapping with name, from, until and match")
        c.keys(at, s, ("name", "from", "until", "match"))
        name = c.text((*at, "name"), s.get("name"), required=True)
        if name is not None and name in names:
            c.fail((*at, "name"), f"{name!r} names an earlier window too")
        names.add(name or "")
        start = _time(c, (*at, "from"), s.get("from"))
        end = _time(c, (*at, "until"), s.get("until"))
        if start is not None and end is not None and end <= start:
            c.fail((*at, "until"), "must be after `from`")
        match = _match(c, (*at, "match"), s.get("match"))
        if name is not None and start is not None and end is not None:
            out.append(Suppression(name, start, end, match))
    return tuple(out)


def _retry(c: _Check, value: Any) -> RetryPolicy:
    r = c.mapping(("retry",), value, "a mapping with attempts, backoff and max_backoff")
    c.keys(("retry",), r, ("attempts", "backoff", "max_backoff"))
    attempts = r.get("attempts", 8)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100:
        c.fail(("retry", "attempts"), f"expected a whole number from 1 to 100, got "
                                      f"{_show(attempts)}")
        attempts = 8
    backoff = _duration(c, ("retry", "backoff"), r.get("backoff"), 2.0)
    cap = _duration(c, ("retry", "max_backoff"), r.get("max_backoff"), 600.0)
    if cap < backoff:
        c.fail(("retry", "max_backoff"), "must be at least `backoff`")
    return RetryPolicy(attempts, backoff, cap)


__all__ = ["DEFAULT_SEVERITY", "PAGERDUTY_URL", "SEVERITIES", "AlertingConfig", "Match",
           "PagerDutySinkConfig", "RetryPolicy", "Route", "SinkConfig", "SlackSinkConfig",
           "SmtpSinkConfig", "Suppression", "WebhookSinkConfig", "parse_alerting",
           "parse_duration", "read_alerting", "to_epoch"]
