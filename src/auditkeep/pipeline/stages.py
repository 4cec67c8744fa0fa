"""Ingest pipeline stages and the pipeline that runs them over a batch of event dicts.

A stage is a small configured callable: settings and expensive set-up in `__init__`,
per-event work in `__call__(event)`, which returns the event (changed in place or not),
returns a `Drop` naming a counted reason, or raises `StageRejection`. Nothing is dropped
silently. Stages run before schema v1 decoding, so they must take any JSON object:
a field of the wrong type is left alone for validation to name. docs/pipeline.md
describes each stage; `auditkeep.pipeline.config` builds them from the YAML file.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Literal

import msgspec
import orjson

from auditkeep.errors import FieldProblem, StageRejection
from auditkeep.pipeline.schema import Event
from auditkeep.pipeline.validate import problem_from_msgspec, scan_free_form

#: Events no sampling can drop (the issue's rule; not configurable).
PROTECTED_SEVERITIES = frozenset({"critical"})
PROTECTED_CATEGORIES = frozenset({"admin", "auth", "policy"})


@dataclass(frozen=True, slots=True)
class Drop:
    """What a stage returns instead of the event to drop it; `reason` is counted."""

    reason: str


#: A stage: the event in, the event (or a `Drop`) out, or `StageRejection` raised.
Stage = Callable[[dict[str, Any]], dict[str, Any] | Drop]


def is_protected(event: Mapping[str, Any]) -> bool:
    """True for events that sampling never drops: severity critical, or category admin,
    auth or policy. Read leniently (case, spaces), since stages may run before
    normalisation and validation: a doubtful event is kept, never sampled away."""
    sev = event.get("severity")
    if type(sev) is str and sev.strip().lower() in PROTECTED_SEVERITIES:
        return True
    cat = event.get("category")
    return type(cat) is str and cat.strip().lower() in PROTECTED_CATEGORIES


class Validate:
    """Schema v1 at this point of the pipeline, so that later stages (sampling above
    all) never see, or silently drop, an event the server would refuse. Does not change
    the event; the server still validates after the pipeline."""

    __slots__ = ()
    kind: ClassVar[str] = "validate"

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        try:
            msgspec.convert(event, Event)
        except msgspec.ValidationError as exc:
            raise StageRejection(f"not valid schema v1: {exc}", stage=self.kind,
                                 problems=[problem_from_msgspec(exc, None)]) from None
        meta = event.get("metadata")
        if meta is not None:
            found, _ = scan_free_form(meta, "/metadata", canonicalize=False)
            if found:
                raise StageRejection(f"metadata: {found[0].detail}", stage=self.kind,
                                     problems=found)
        return event


EmailCase = Literal["domain", "lower", "keep"]
ActionCase = Literal["keep", "lower"]

# (container, field, optional): the free-text fields Normalise may tidy. Ids (`id`,
# `actor.id`, `actor.session_id`, `impersonator.id`, `resource.id`, `targets[].id`,
# `request_id`, `trace_id`, `span_id`), `tenant`, `metadata` and `changes` are never touched.
_TEXT = (("", "action", False), ("", "time", False), ("", "reason", True),
         ("actor", "name", True), ("actor", "user_agent", True),
         ("resource", "type", False), ("resource", "name", True),
         ("targets", "type", False), ("targets", "name", True),
         *(("source", f, True) for f in ("service", "version", "host", "region", "environment")))
_ENUMS = (("", "outcome"), ("", "category"), ("", "severity"), ("actor", "type"),
          ("impersonator", "type"))

_Fix = Callable[[str], str]
_Op = tuple[str, _Fix, bool]  # (field, fix, drop when blank)


class Normalise:
    """Tidy values without changing what they mean, so the same thing is written the
    same way by every producer (and found by one search):

    - `text`: strip surrounding white space and apply Unicode NFC to free-text fields;
      an optional one left blank is removed (blank is not valid schema v1 anyway);
    - `enums`: lower-case the enumerated fields (outcome, category, severity, actor and
      impersonator type), so `Success` becomes the valid `success`;
    - `email`: `domain` lower-cases what follows the `@` (the local part may be
      case-sensitive, RFC 5321), `lower` the whole address, `keep` nothing;
    - `ip`: the canonical text of `actor.ip` (IPv6 compressed, `[...]` brackets and
      the IPv4-mapped `::ffff:` prefix removed); text that is no address is left as is;
    - `action`: `keep` (default: actions are producers' identifiers, e.g. CloudTrail's
      `aws.s3.PutObject`) or `lower`.

    Ids are never changed: they are what producers, receipts and dedup refer to."""

    __slots__ = ("_ops",)
    kind: ClassVar[str] = "normalise"

    def __init__(self, *, text: bool = True, enums: bool = True, email: EmailCase = "domain",
                 ip: bool = True, action: ActionCase = "keep") -> None:
        ops: dict[str, list[_Op]] = {}

        def add(where: str, field: str, fix: _Fix, optional: bool) -> None:
            ops.setdefault(where, []).append((field, fix, optional and text))

        if text:
            for where, field, optional in _TEXT:
                if (where, field) == ("", "action") and action == "lower":
                    add(where, field, lambda s: _tidy(s).lower(), optional)
                else:
                    add(where, field, _tidy, optional)
        elif action == "lower":
            add("", "action", str.lower, False)
        if enums:
            for where, field in _ENUMS:
                add(where, field, _lower_enum, False)
        if email not in ("domain", "lower", "keep") or action not in ("keep", "lower"):
            raise ValueError(f"email must be domain, lower or keep and action keep or lower, "
                             f"got {email!r} and {action!r}")
        email_fix = {"domain": _email_domain, "lower": str.lower, "keep": None}[email]
        if email_fix is not None or text:
            add("actor", "email", _chain(_tidy if text else None, email_fix), True)
        if ip or text:
            add("actor", "ip", _chain(_tidy if text else None, _ip if ip else None), True)
        self._ops = {where: tuple(found) for where, found in ops.items()}

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        ops = self._ops
        _apply(event, ops.get(""))
        actor = event.get("actor")
        if type(actor) is dict:
            _apply(actor, ops.get("actor"))
            imp = actor.get("impersonator")
            if type(imp) is dict:
                _apply(imp, ops.get("impersonator"))
        for where in ("resource", "source"):
            obj = event.get(where)
            if type(obj) is dict:
                _apply(obj, ops.get(where))
        targets = event.get("targets")
        if type(targets) is list and "targets" in ops:
            for target in targets:
                if type(target) is dict:
                    _apply(target, ops["targets"])
        return event


def _apply(obj: dict[str, Any], ops: tuple[_Op, ...] | None) -> None:
    if not ops:
        return
    for field, fix, drop_blank in ops:
        value = obj.get(field)
        if type(value) is str:
            fixed = fix(value)
            if not fixed and drop_blank:
                del obj[field]
            elif fixed != value:
                obj[field] = fixed


def _tidy(s: str) -> str:
    s = s.strip()
    if s.isascii() or unicodedata.is_normalized("NFC", s):
        return s
    return unicodedata.normalize("NFC", s)


def _lower_enum(s: str) -> str:
    return s.strip().lower()


def _email_domain(s: str) -> str:
    local, at, domain = s.rpartition("@")
    return f"{local}@{domain.lower()}" if at else s


def _ip(s: str) -> str:
    text = s[1:-1] if s.startswith("[") and s.endswith("]") else s
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return s
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def _chain(first: _Fix | None, then: _Fix | None) -> _Fix:
    if first is None:
        return then or str
    if then is None:
        return first
    return lambda s: then(first(s))


class Enrich:
    """Add context the producer did not send; never overwrite what it did.

    - `static`: dotted fields (`source.environment`, `source.region`, `metadata.team`)
      set to fixed values when absent;
    - `user_agent`: `actor.user_agent` parsed (ua-parser, uap-core's rules) into
      `metadata.user_agent = {browser, browser_version, os, os_version, device}`, the
      parts that are known. These are coarse, non-identifying facts, kept in clear
      while the user agent itself enters the log as a salted commitment;
    - `ingest`: the source's own metadata (its name and the `metadata` configured for
      it) as `metadata.ingest`."""

    __slots__ = ("_ingest", "_static", "_user_agent")
    kind: ClassVar[str] = "enrich"

    def __init__(self, *, static: Mapping[str, Any] | None = None, user_agent: bool = False,
                 ingest: Mapping[str, Any] | None = None) -> None:
        self._static = tuple((tuple(k.split(".")), v) for k, v in (static or {}).items())
        self._ingest = dict(ingest) if ingest else None
        self._user_agent = user_agent
        if user_agent:
            _ua_parser()  # load the rules now, not on the first event

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        for path, value in self._static:
            _set_absent(event, path, value)
        if self._ingest is not None:
            _set_absent(event, ("metadata", "ingest"), dict(self._ingest))
        if self._user_agent:
            actor = event.get("actor")
            ua = actor.get("user_agent") if type(actor) is dict else None
            if type(ua) is str and ua:
                parsed = parse_user_agent(ua)
                if parsed:
                    _set_absent(event, ("metadata", "user_agent"), dict(parsed))
        return event


def _set_absent(obj: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        child = obj.get(part)
        if child is None:
            child = obj[part] = {}
        elif type(child) is not dict:
            return  # a producer's value of the wrong type: validation will name it
        obj = child
    obj.setdefault(path[-1], value)


@lru_cache(maxsize=1)
def _ua_parser() -> Any:
    import ua_parser  # the rules take ~0.3 s to load: only when a stage asks for them

    return ua_parser.parser


@lru_cache(maxsize=8192)
def parse_user_agent(ua: str) -> tuple[tuple[str, str], ...]:
    """The known parts of a user agent as (name, value) pairs: browser, browser_version,
    os, os_version, device. Cached: audit events repeat a few agents many times."""
    result = _ua_parser().parse(ua)
    out: list[tuple[str, str]] = []
    if result.user_agent is not None:
        out.append(("browser", result.user_agent.family))
        if version := _version(result.user_agent.major, result.user_agent.minor,
                               result.user_agent.patch):
            out.append(("browser_version", version))
    if result.os is not None:
        out.append(("os", result.os.family))
        if version := _version(result.os.major, result.os.minor, result.os.patch):
            out.append(("os_version", version))
    if result.device is not None and result.device.family != "Other":
        out.append(("device", result.device.family))
    return tuple(out)


def _version(*parts: str | None) -> str:
    out = []
    for part in parts:
        if not part:
            break
        out.append(part)
    return ".".join(out)


class Sample:
    """Keep `rate` (0 to 1) of the events whose action matches one of `actions` (all
    events when none are given); drop the rest with the counted reason `reason`.

    The decision is a hash of the event id, so a retried event is sampled the same way
    on every try and every server (events without an id: a hash of their content).
    Protected events (`is_protected`) are always kept. In `actions`, `*` matches any
    run of characters, dots included (`k8s.*.get` matches `k8s.pods.get` and
    `k8s.pods.log.get`, as `users.*` matches every action under `users.` in search)."""

    __slots__ = ("_drop", "_match", "_threshold")
    kind: ClassVar[str] = "sample"

    def __init__(self, rate: float, *, actions: Iterable[str] = (),
                 reason: str = "sampled") -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"sample rate must be from 0 to 1, got {rate!r}")
        self._threshold = int(rate * 2**64)  # kept when the 64-bit hash is below
        self._match = compile_actions(actions)
        self._drop = Drop(reason)

    def __call__(self, event: dict[str, Any]) -> dict[str, Any] | Drop:
        if self._match is not None:
            action = event.get("action")
            if type(action) is not str or self._match(action) is None:
                return event
        if is_protected(event) or sample_hash(event) < self._threshold:
            return event
        return self._drop


def compile_actions(patterns: Iterable[str]) -> Callable[[str], Any] | None:
    """One matcher for action patterns where `*` matches any run of characters; None
    for no patterns (everything matches)."""
    parts = ["".join(".*" if c == "*" else re.escape(c) for c in p) for p in patterns]
    if not parts:
        return None
    return re.compile("|".join(f"(?:{p})" for p in parts)).fullmatch


def sample_hash(event: Mapping[str, Any]) -> int:
    """A 64-bit hash that is the same for the same event on any process: of its id,
    or of its content when it has none (the server assigns ids after the pipeline)."""
    event_id = event.get("id")
    if type(event_id) is str and event_id:
        key = b"id\x00" + event_id.encode()
    else:
        try:
            key = b"content\x00" + orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # integers beyond 64 bits, fragments
            key = b"content\x00" + json.dumps(event, sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


@dataclass(slots=True)
class PipelineResult:
    """What a pipeline made of a batch: the kept events in input order, with each one's
    position in the input; every rejection as `FieldProblem`s carrying the event's
    index; each dropped event's (index, reason)."""

    events: list[dict[str, Any]]
    positions: list[int]
    problems: list[FieldProblem]
    dropped: list[tuple[int, str]]

    @property
    def drop_counts(self) -> dict[str, int]:
        """Dropped events by reason (what the server adds to its metrics)."""
        counts: dict[str, int] = {}
        for _, reason in self.dropped:
            counts[reason] = counts.get(reason, 0) + 1
        return counts

    @property
    def rejected(self) -> list[int]:
        """Indexes of the rejected events."""
        return sorted({p.index for p in self.problems if p.index is not None})

    def raise_for_problems(self) -> None:
        """For callers that take a batch all or nothing (as `POST /v1/events` does)."""
        if self.problems:
            shown = "; ".join(f"{p.pointer}: {p.detail}" for p in self.problems[:5])
            more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
            raise StageRejection(f"{len(self.rejected)} event(s) rejected by the pipeline: "
                                 f"{shown}{more}", problems=self.problems)


class Pipeline:
    """Stages in order, run over a batch of decoded JSON objects before schema v1
    validation and sequencing. An event leaves at the first stage that drops or rejects
    it; the others may change it in place."""

    __slots__ = ("stages",)

    def __init__(self, stages: Sequence[Stage] = ()) -> None:
        self.stages: tuple[Stage, ...] = tuple(stages)

    @property
    def kinds(self) -> list[str]:
        """The stages' names in order, e.g. for a start-up log line."""
        return [_kind(s) for s in self.stages]

    def process(self, event: dict[str, Any]) -> dict[str, Any] | Drop:
        """One event through every stage; raises `StageRejection`."""
        for stage in self.stages:
            try:
                out = stage(event)
            except StageRejection as exc:
                if exc.stage is None:
                    exc.stage = _kind(stage)
                raise
            if isinstance(out, Drop):
                return out
            event = out
        return event

    def __call__(self, events: Sequence[Any], *, single: bool = False) -> PipelineResult:
        """Run the batch. `single`: the body was one object, so pointers start at the
        event itself instead of `/<index>` (as in `auditkeep.pipeline.prepare`)."""
        result = PipelineResult([], [], [], [])
        for i, event in enumerate(events):
            at = "" if single else f"/{i}"
            if type(event) is not dict:
                result.problems.append(FieldProblem(
                    at or "/", "expected an event object", "an object",
                    type(event).__name__, index=i))
                continue
            try:
                out = self.process(event)
            except StageRejection as exc:
                kind = exc.stage or "pipeline"
                found = exc.problems or [FieldProblem("", exc.detail)]
                result.problems += [FieldProblem(_under(at, p.pointer), f"{kind}: {p.detail}",
                                                 p.expected, p.actual, index=i) for p in found]
                continue
            if isinstance(out, Drop):
                result.dropped.append((i, out.reason))
            else:
                result.events.append(out)
                result.positions.append(i)
        return result

    def __repr__(self) -> str:
        return f"Pipeline({' -> '.join(self.kinds) or 'no stages'})"


def _kind(stage: Stage) -> str:
    return str(getattr(stage, "kind", None) or getattr(stage, "__name__", type(stage).__name__))


def _under(at: str, pointer: str) -> str:
    return (at + ("" if pointer == "/" else pointer)) or "/"


__all__ = ["PROTECTED_CATEGORIES", "PROTECTED_SEVERITIES", "Drop", "Enrich", "Normalise",
           "Pipeline", "PipelineResult", "Sample", "Stage", "StageRejection", "Validate",
           "compile_actions", "is_protected", "parse_user_agent", "sample_hash"]
