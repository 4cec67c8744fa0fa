"""Rules applied to events in commit order, with the windowed state they need.

Storage-free: the engine (detect/engine.py) feeds it committed events and persists the
state it changed (`dirty`) with the cursor, so windows survive restarts; the rule tests
(detect/testing.py) feed it their events. Windows run on event `time`; silence runs on
the server's clock against `received`, since "nothing arrived" is about arrival.

State is per (rule id, tenant + group) and JSON-able:
- threshold: [[t, log, seq, id], ...] matches inside the window;
- value_count: {value: [t, log, seq, id]};
- temporal(_ordered): {member index: [t, log, seq, id]} / the chain's start and links;
- new_value: 1 once the value tuple was seen;
- silence: [last received t, fired?, log, seq, id];
- sequence_gap: the highest producer sequence number seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from auditkeep.detect.rules import Rule
from auditkeep.detect.ruleset import RuleSet
from auditkeep.detect.view import EventView
from auditkeep.pipeline.prepare import epoch_of

StateKey = tuple[str, str]
Link = list[Any]  # [t, log, seq, id]


@dataclass(slots=True)
class Fired:
    rule: Rule
    tenant: str
    group: dict[str, Any]
    links: list[Link]  # the events that made it, oldest first
    count: int
    trigger: str  # what makes this firing unique (its last event, or the silence start)
    details: dict[str, Any] = field(default_factory=dict)
    received: float = 0.0  # when the triggering event arrived (epoch s; 0: by the clock)


def epoch(stamp: str) -> float:
    """epoch_of, with 0.0 (the clock's time, for alert latency) for a malformed stamp."""
    try:
        return epoch_of(stamp)
    except ValueError:
        return 0.0


class Evaluator:
    def __init__(self, ruleset: RuleSet, state: dict[StateKey, Any] | None = None) -> None:
        self.ruleset = ruleset
        self.state: dict[StateKey, Any] = state if state is not None else {}
        self.dirty: set[StateKey] = set()

    @staticmethod
    def decode_state(raw: dict[StateKey, bytes]) -> dict[StateKey, Any]:
        return {k: orjson.loads(v) for k, v in raw.items()}

    def take_dirty(self) -> dict[StateKey, bytes | None]:
        out = {k: (orjson.dumps(self.state[k]) if k in self.state else None)
               for k in self.dirty}
        self.dirty.clear()
        return out

    def _put(self, key: StateKey, value: Any) -> None:
        self.state[key] = value
        self.dirty.add(key)

    def _drop(self, key: StateKey) -> None:
        if self.state.pop(key, None) is not None:
            self.dirty.add(key)

    # events ----------------------------------------------------------------------

    def feed(self, view: EventView, tenant: str) -> list[Fired]:
        out: list[Fired] = []
        for rule in self.ruleset.candidates(view):
            if not rule.applies_to(tenant):
                continue
            if rule.kind in ("temporal", "temporal_ordered"):
                hits = [i for i, m in enumerate(rule.members) if m.matcher(view)]
                if hits:
                    self._temporal(rule, view, tenant, hits, out)
                continue
            if not rule.matcher(view):
                continue
            kind = rule.kind
            if kind == "match":
                group = self._group(rule, view)
                out.append(Fired(rule, tenant, group, [_link(view)], 1, _trigger(view)))
            elif kind == "threshold":
                self._threshold(rule, view, tenant, out)
            elif kind == "value_count":
                self._value_count(rule, view, tenant, out)
            elif kind == "new_value":
                self._new_value(rule, view, tenant, out)
            elif kind == "silence":
                self._seen(rule, view, tenant)
            elif kind == "sequence_gap":
                self._sequence(rule, view, tenant, out)
        return out

    def _group(self, rule: Rule, view: EventView) -> dict[str, Any]:
        return {p: view.first(p) for p in rule.group_by}

    def _key(self, rule: Rule, tenant: str, group: dict[str, Any]) -> StateKey:
        return rule.id, tenant + "\0" + orjson.dumps(list(group.values())).decode()

    def _threshold(self, rule: Rule, view: EventView, tenant: str, out: list[Fired]) -> None:
        group = self._group(rule, view)
        key = self._key(rule, tenant, group)
        link = _link(view)
        links = [x for x in self.state.get(key, ()) if x[0] > link[0] - rule.window]
        links.append(link)
        assert rule.condition is not None
        if rule.condition.holds(len(links)):
            out.append(Fired(rule, tenant, group, links, len(links), _trigger(view),
                             {"window_s": rule.window}))
            self._drop(key)
        else:
            self._put(key, links)

    def _value_count(self, rule: Rule, view: EventView, tenant: str, out: list[Fired]) -> None:
        values = [v for v in view.values(rule.value_field[0]) if not isinstance(v, dict | list)]
        if not values:
            return
        group = self._group(rule, view)
        key = self._key(rule, tenant, group)
        link = _link(view)
        seen = {v: x for v, x in self.state.get(key, {}).items()
                if x[0] > link[0] - rule.window}
        for v in values:
            seen[str(v)] = link
        assert rule.condition is not None
        if rule.condition.holds(len(seen)):
            links = sorted(seen.values(), key=lambda x: (x[0], x[2]))
            out.append(Fired(rule, tenant, group, links, len(seen), _trigger(view),
                             {"field": rule.value_field[0], "values": sorted(seen)[:100],
                              "window_s": rule.window}))
            self._drop(key)
        else:
            self._put(key, seen)

    def _temporal(self, rule: Rule, view: EventView, tenant: str, hits: list[int],
                  out: list[Fired]) -> None:
        group = self._group(rule, view)
        key = self._key(rule, tenant, group)
        link = _link(view)
        n = len(rule.members)
        if rule.kind == "temporal":
            seen = {k: x for k, x in self.state.get(key, {}).items()
                    if x[0] > link[0] - rule.window}
            for i in hits:
                seen[str(i)] = link
            if len(seen) == n:
                links = sorted(seen.values(), key=lambda x: (x[0], x[2]))
                out.append(Fired(rule, tenant, group, links, n, _trigger(view)))
                self._drop(key)
            else:
                self._put(key, seen)
            return
        # Ordered: chains[k] is the latest-starting run that has seen members 0..k in
        # order, as its links; a later start keeps more of the window ahead of it.
        chains: dict[str, list[Link]] = dict(self.state.get(key, {}))
        chains = {k: c for k, c in chains.items() if c[0][0] > link[0] - rule.window}
        for i in sorted(hits, reverse=True):  # one event may advance one step only
            if i == 0:
                chains["0"] = [link]
            elif str(i - 1) in chains:
                chains[str(i)] = [*chains[str(i - 1)], link]
        if str(n - 1) in chains:
            links = chains[str(n - 1)]
            out.append(Fired(rule, tenant, group, links, n, _trigger(view)))
            self._drop(key)
        else:
            self._put(key, chains)

    def _new_value(self, rule: Rule, view: EventView, tenant: str, out: list[Fired]) -> None:
        values = {p: view.first(p) for p in rule.value_field}
        if any(v is None for v in values.values()):
            return
        key = self._key(rule, tenant, values)
        if key in self.state:
            return
        self._put(key, 1)
        out.append(Fired(rule, tenant, values, [_link(view)], 1, _trigger(view)))

    def _seen(self, rule: Rule, view: EventView, tenant: str) -> None:
        group = self._group(rule, view)
        key = self._key(rule, tenant, group)
        received = epoch(str(view.record.get("received") or view.time))
        prev = self.state.get(key)
        if prev is None or received >= prev[0] or prev[1]:
            self._put(key, [max(received, prev[0] if prev else 0.0), False, view.log,
                            view.seq, view.id, group])

    def _sequence(self, rule: Rule, view: EventView, tenant: str, out: list[Fired]) -> None:
        got = view.first(rule.value_field[0])
        if isinstance(got, str) and got.isdigit():
            got = int(got)
        if not isinstance(got, int) or isinstance(got, bool):
            return
        group = self._group(rule, view)
        key = self._key(rule, tenant, group)
        last = self.state.get(key)
        if last is not None and got > last + 1:
            out.append(Fired(rule, tenant, group, [_link(view)], got - last - 1,
                             _trigger(view), {"field": rule.value_field[0],
                                              "expected": last + 1, "got": got,
                                              "missing": got - last - 1}))
        if last is None or got > last:
            self._put(key, got)

    # the clock -----------------------------------------------------------------------

    def watch(self, tenants: list[str], now: float) -> None:
        """Start the silence clock of every ungrouped silence rule for these tenants, so
        a source that never sends anything is also noticed."""
        for rule in self.ruleset.silences:
            if rule.group_by:
                continue
            for tenant in tenants:
                if rule.applies_to(tenant):
                    key = self._key(rule, tenant, {})
                    if key not in self.state:
                        self._put(key, [now, False, "", -1, "", {}])

    def tick(self, now: float) -> list[Fired]:
        """Silence rules whose groups have been quiet for their period fire once each,
        and again only after events resumed and stopped again."""
        out: list[Fired] = []
        by_id = {r.id: r for r in self.ruleset.silences}
        for key, value in list(self.state.items()):
            rule = by_id.get(key[0])
            if rule is None or value[1] or now - value[0] < rule.window:
                continue
            tenant = key[1].split("\0", 1)[0]
            last, _, log, seq, eid, group = value
            links = [[last, log, seq, eid]] if seq >= 0 else []
            since = iso(last)
            out.append(Fired(rule, tenant, group, links, 0, f"silence:{last}",
                             {"quiet_since": since, "quiet_s": round(now - last, 3),
                              "period_s": rule.window}))
            self._put(key, [last, True, log, seq, eid, group])
        return out


def iso(t: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds and a Z, as alerts store times."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _link(view: EventView) -> Link:
    return [epoch(view.time), view.log, view.seq, view.id]


def _trigger(view: EventView) -> str:
    return f"{view.log}:{view.seq}"
