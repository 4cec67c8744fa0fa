"""The redaction policy: what happens to personal data and secrets before an event is
stored (or, in the SDK, before it leaves the process).

Four field rules by path: `drop` (remove), `mask` (keep a prefix and/or suffix),
`hash` (a keyed pseudonym, see pseudonyms.py) and `commit` (stored as a salted
commitment, the value beside the log where erasure can delete it). Then detectors
(detectors.py) over every other string the producer wrote — reason, resource and
target names, source, `changes`, nested `metadata` and the raw source object — and the
values of keys that name secrets (`password`, `api_key`, a change of field `token`).

Each event lists what fired in `redactions: [{path, rule, action}]`, never the removed
value. Applying a policy twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import orjson

from auditkeep.privacy.detectors import DEFAULT_DETECTORS, Finding, Scanner, is_sensitive_key
from auditkeep.privacy.paths import Parts, matches, parse_pattern, pointer
from auditkeep.privacy.pseudonyms import is_pseudonym, pseudonym

FieldAction = Literal["drop", "mask", "hash", "commit"]
FIELD_ACTIONS = ("drop", "mask", "hash", "commit")
#: What a detector finding does: replace the match with `[REDACTED:<rule>]`, with its
#: pseudonym, or with a mask keeping its last four characters; or act on the whole
#: string as the field rules do.
DetectAction = Literal["redact", "hash", "mask", "drop", "commit"]
DETECT_ACTIONS = ("redact", "hash", "mask", "drop", "commit")
SECRET_KEY_RULE = "secret_key"  # noqa: S105 -- a rule name, not a secret
MASK = "*"

#: Schema fields detectors leave alone: identifiers and enumerations (changing them would
#: break receipts, dedup and search) and the actor, whose personal fields are committed
#: anyway. A field rule may still name any of them.
_SKIP_TOP = frozenset({"id", "action", "time", "category", "outcome", "severity", "tenant",
                       "trace_id", "span_id", "actor", "redactions",
                       # what the server adds (a stored record, when the PII scan reads it)
                       "seq", "received", "submitter", "v", "raw"})


#: A string the detectors will read: (its container, its key there, the string, the
#: container's place).
_Text = tuple[Any, str | int, str, Parts]


@dataclass(frozen=True, slots=True)
class RedactRule:
    path: str
    action: FieldAction
    keep_start: int = 0  # mask: characters kept at the start
    keep_end: int = 4  # mask: characters kept at the end (a card's last four)

    def __post_init__(self) -> None:
        parse_pattern(self.path)  # raises PathError
        if self.action not in FIELD_ACTIONS:
            raise ValueError(f"field rule action must be one of {', '.join(FIELD_ACTIONS)}, "
                             f"got {self.action!r}")
        if self.keep_start < 0 or self.keep_end < 0:
            raise ValueError("keep_start and keep_end must not be negative")


def mask(value: str, keep_start: int = 0, keep_end: int = 4) -> str:
    """`value` with all but `keep_start` leading and `keep_end` trailing characters as
    `*` (nothing kept when that would show more than five eighths of it: short secrets stay
    hidden, while a card's first six and last four of 16 may show, as PCI DSS allows)."""
    n = len(value)
    if (keep_start + keep_end) * 8 > n * 5:
        keep_start = keep_end = 0
    return value[:keep_start] + MASK * (n - keep_start - keep_end) + value[n - keep_end:]


class RedactionPolicy:
    """A compiled policy. `key` is the tenant's pseudonym key (the server derives it;
    in the SDK pass your own); `hash` rules and actions need one."""

    __slots__ = ("_detect_actions", "_fields", "_key", "_scanner", "raw", "secret_keys")
    kind: ClassVar[str] = "redact"  # its name as a pipeline stage

    def __init__(self, fields: Iterable[RedactRule] = (), *,
                 detectors: Iterable[str] = DEFAULT_DETECTORS,
                 actions: Mapping[str, DetectAction] | None = None,
                 secret_keys: bool = True, raw: bool = True, key: bytes | None = None) -> None:
        self._fields = tuple((r, parse_pattern(r.path)) for r in fields)
        names = tuple(detectors)
        self._scanner = Scanner(names) if names else None
        acts = dict(actions or {})
        for name, act in acts.items():
            if act not in DETECT_ACTIONS:
                raise ValueError(f"detector action for {name!r} must be one of "
                                 f"{', '.join(DETECT_ACTIONS)}, got {act!r}")
        self._detect_actions = acts
        self.secret_keys = secret_keys
        self.raw = raw
        self._key = key
        needs_key = any(r.action == "hash" for r in fields) or "hash" in acts.values()
        if needs_key and not key:
            raise ValueError("a policy with `hash` needs a pseudonym key")

    @property
    def detectors(self) -> tuple[str, ...]:
        return self._scanner.names if self._scanner is not None else ()

    # -- events --------------------------------------------------------------------------
    def apply(self, event: dict[str, Any]) -> dict[str, Any]:
        """Redact `event` in place (and return it), adding to its `redactions`."""
        fired: list[dict[str, str]] = []
        done: set[Parts] = set()
        for rule, segs in self._fields:
            for parts, container, k in list(matches(event, segs)):
                if parts in done:
                    continue
                done.add(parts)
                if self._field(container, k, rule):
                    fired.append({"path": pointer(parts), "rule": rule.action,
                                  "action": rule.action})
        if self._scanner is not None or self.secret_keys:
            texts: list[_Text] = []
            for k, value in list(event.items()):
                if k in _SKIP_TOP:
                    continue
                self._walk(event, k, value, (k,), done, fired, texts)
            self._scan(texts, fired)
        if fired:
            _add(event, fired)
        return event

    def _field(self, container: Any, k: str | int, rule: RedactRule) -> bool:
        value = container[k]
        if rule.action == "drop":
            _remove(container, k, rule.action)
            return True
        if rule.action == "commit":
            return value is not None and not (type(value) is dict and "$c" in value)
        if type(value) is not str:
            return False  # mask and hash are for text; validation names a wrong type
        if rule.action == "mask":
            new = mask(value, rule.keep_start, rule.keep_end)
        else:
            new = pseudonym(self._key or b"", value)
        if new == value:
            return False
        container[k] = new
        return True

    def _walk(self, container: Any, k: str | int, value: Any, parts: Parts,
              done: set[Parts], fired: list[dict[str, str]], texts: list[_Text]) -> None:
        """Redact secret keys; collect the strings for the detectors into `texts` as
        (container, key, string, the container's place). Leaves are handled inline and
        their places built only when something fires: half the stage's walking time."""
        if done and parts in done:
            return
        t = type(value)
        if t is str:
            texts.append((container, k, value, parts[:-1]))
            return
        if t is dict:
            items: Iterable[tuple[str | int, Any]] = list(value.items())
            secret_keys = self.secret_keys
            change_secret = secret_keys and type(value.get("field")) is str \
                and is_sensitive_key(value["field"])
        elif t is list:
            items = enumerate(value)
            secret_keys = change_secret = False
        else:
            return
        for ck, cv in items:
            if secret_keys and (is_sensitive_key(ck) or (
                    change_secret and ck in ("before", "after"))):
                here = (*parts, ck)
                if here not in done and _secret(value, ck, cv):
                    fired.append({"path": pointer(here), "rule": SECRET_KEY_RULE,
                                  "action": "redact"})
                continue
            tc = type(cv)
            if tc is str:
                if not done or (*parts, ck) not in done:
                    texts.append((value, ck, cv, parts))
            elif tc is dict or tc is list:
                self._walk(value, ck, cv, (*parts, ck), done, fired, texts)

    def _scan(self, texts: list[_Text], fired: list[dict[str, str]], *, raw: bool = False
              ) -> None:
        """The detectors over every collected string at once (one choice of detectors
        an event, see `Scanner.find_many`), then the replacements."""
        if self._scanner is None or not texts:
            return
        results = self._scanner.find_many([t[2] for t in texts])
        for (container, k, value, parent), found in zip(texts, results, strict=True):
            if found:
                self._replace(container, k, value, (*parent, k), found, fired, raw)

    def _replace(self, container: Any, k: str | int, value: str, parts: Parts,
                 found: list[Finding], fired: list[dict[str, str]], raw: bool) -> None:
        """Apply each finding's action. In a raw object `drop` and `commit` redact the
        match instead: the raw object is bytes beside the log, not fields to commit."""
        out: list[str] = []
        pos = 0
        rules: list[tuple[str, DetectAction]] = []
        for f in found:
            act: DetectAction = self._detect_actions.get(f.rule, "redact")
            if raw and act in ("drop", "commit"):
                act = "redact"
            if act in ("drop", "commit"):
                fired.append({"path": pointer(parts), "rule": f.rule, "action": act})
                if act == "drop":
                    _remove(container, k, f.rule)
                return  # commit: the whole string is committed by prepare
            span = value[f.start:f.end]
            if act == "hash":
                new = pseudonym(self._key or b"", span)
            elif act == "mask":
                new = mask(span, 0, 4)
            else:
                new = f"[REDACTED:{f.rule}]"
            if new != span:
                out.append(value[pos:f.start])
                out.append(new)
                pos = f.end
                rules.append((f.rule, act))
        if not rules:
            return
        out.append(value[pos:])
        container[k] = "".join(out)
        for rule, act in dict.fromkeys(rules):
            fired.append({"path": pointer(parts), "rule": rule, "action": act})

    __call__ = apply  # a policy is a pipeline stage

    # -- raw source objects --------------------------------------------------------------
    def redact_raw(self, data: bytes) -> tuple[bytes, list[dict[str, str]]]:
        """A source's original bytes with the detectors and secret keys applied: JSON is
        redacted value by value and written back compact (the entry's `raw.sha256` is
        of what is stored), other UTF-8 text as one string. Paths are under `/raw`.
        Binary data is returned unchanged (no detector can read it)."""
        if not self.raw or (self._scanner is None and not self.secret_keys):
            return data, []
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                return data, []
            holder: dict[str, Any] = {"raw": text}
            fired: list[dict[str, str]] = []
            self._scan([(holder, "raw", text, ())], fired, raw=True)
            if not fired:
                return data, []
            return str(holder.get("raw", "")).encode(), fired
        holder = {"raw": doc}
        fired = []
        texts: list[_Text] = []
        self._walk(holder, "raw", doc, ("raw",), set(), fired, texts)
        self._scan(texts, fired, raw=True)
        if not fired:
            return data, []
        return orjson.dumps(holder["raw"]), fired


def _remove(container: Any, k: str | int, rule: str) -> None:
    """Drop a field; an item of a list becomes a placeholder instead, so the places of
    the items after it (and the paths recorded for them) stay what they were."""
    if isinstance(container, list) and isinstance(k, int):
        container[k] = f"[REDACTED:{rule}]"
    else:
        del container[k]


def _secret(container: Any, k: str | int, value: Any) -> bool:
    if value is None or value == "" or (type(value) is str and (
            value.startswith("[REDACTED:") or is_pseudonym(value))):
        return False
    container[k] = f"[REDACTED:{SECRET_KEY_RULE}]"
    return True


def _add(event: dict[str, Any], fired: list[dict[str, str]]) -> None:
    have = event.get("redactions")
    if type(have) is not list:
        have = event["redactions"] = []
    seen = {(r.get("path"), r.get("rule")) for r in have if type(r) is dict}
    for r in fired:
        if (r["path"], r["rule"]) not in seen:
            seen.add((r["path"], r["rule"]))
            have.append(r)


def commit_paths(event_redactions: Iterable[Mapping[str, Any]]) -> list[str]:
    """The pointers an event's redactions ask the server to commit."""
    return [str(r["path"]) for r in event_redactions if r.get("action") == "commit"]


__all__ = ["DETECT_ACTIONS", "FIELD_ACTIONS", "SECRET_KEY_RULE", "DetectAction", "FieldAction",
           "RedactRule", "RedactionPolicy", "commit_paths", "mask"]
