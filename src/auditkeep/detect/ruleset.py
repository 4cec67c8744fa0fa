"""Rule files and the rule set the engine runs.

A rules directory holds `*.yml`/`*.yaml` rule files, native (a top-level `rules:` list)
or Sigma (documents with `detection:` or `correlation:`), and optionally
`alerting.yaml` (sinks, routes, noise control: detect/alerting.py). Any file may carry
`tests:` (detect/testing.py). The directory loads whole or not at all: one bad file
keeps the rules that were running, and the error says which file and why.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from auditkeep.detect.native import load_native
from auditkeep.detect.rules import CORRELATIONS, Discriminator, Rule, RuleError
from auditkeep.detect.view import EventView

ALERTING_FILE = "alerting.yaml"
RULE_SUFFIXES = (".yml", ".yaml")


@dataclass(slots=True)
class RuleFile:
    path: str
    rules: list[Rule]
    tests: list[Any] = field(default_factory=list)


def load_text(text: str, file: str) -> RuleFile:
    """One rule file, native or Sigma, with its tests. Raises RuleError."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise RuleError(file, f"not YAML: {exc}") from None
    if not docs or not all(isinstance(d, dict) for d in docs):
        raise RuleError(file, "a rule file holds one or more YAML mappings")
    tests: list[Any] = []
    for d in docs:
        found = d.pop("tests", None)
        if found is not None:
            if not isinstance(found, list):
                raise RuleError(file, "`tests` must be a list of test cases")
            tests.extend(found)
    if any("rules" in d for d in docs):
        if len(docs) != 1:
            raise RuleError(file, "a native rule file is one YAML document")
        return RuleFile(file, load_native(docs[0], file), tests)
    if any("detection" in d or "correlation" in d for d in docs):
        from auditkeep.detect.sigma import load_sigma  # pySigma loads only when used

        return RuleFile(file, load_sigma(yaml.safe_dump_all(docs, sort_keys=False), file),
                        tests)
    raise RuleError(file, "neither a native rule file (`rules:`) nor a Sigma rule "
                          "(`detection:` or `correlation:`)")


def load_file(path: Path) -> RuleFile:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(str(path), f"cannot read: {exc}") from None
    return load_text(text, str(path))


def rule_paths(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir()
                  if p.suffix in RULE_SUFFIXES and p.name != ALERTING_FILE and p.is_file()
                  and not p.name.startswith("."))


class RuleSet:
    """The rules in force, indexed for the engine: an event is tried only against the
    rules whose discriminator it satisfies, plus those without one."""

    def __init__(self, files: Iterable[RuleFile] = ()) -> None:
        self.files = list(files)
        self.rules: list[Rule] = []
        seen: dict[str, str] = {}
        for f in self.files:
            for r in f.rules:
                if r.id in seen:
                    raise RuleError(f.path, f"rule id {r.id!r} is already used in {seen[r.id]}")
                seen[r.id] = f.path
                self.rules.append(r)
        self.active = [r for r in self.rules if r.enabled and r.generate]
        self.silences = [r for r in self.active if r.kind == "silence"]
        self._index: dict[tuple[str, bool], dict[str, list[Rule]]] = {}
        self._always: list[Rule] = []
        for r in self.active:
            d = r.discriminator or _members_discriminator(r)
            if d is None:
                self._always.append(r)
                continue
            by_value = self._index.setdefault((d.path, d.casefold), {})
            for v in d.values:
                by_value.setdefault(v.casefold() if d.casefold else v, []).append(r)

    def by_id(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def candidates(self, view: EventView) -> Iterator[Rule]:
        yield from self._always
        for (path, fold), by_value in self._index.items():
            found = view.values(path)
            if len(found) == 1:  # the common case: one value, no de-duplication
                v = found[0]
                if isinstance(v, str):
                    yield from by_value.get(v.casefold() if fold else v, ())
                continue
            picked: dict[str, Rule] = {}
            for v in found:
                if isinstance(v, str):
                    for r in by_value.get(v.casefold() if fold else v, ()):
                        picked[r.id] = r
            yield from picked.values()


def _members_discriminator(rule: Rule) -> Discriminator | None:
    """A correlation over several rules can be indexed when they all share one path."""
    if rule.kind not in CORRELATIONS or not rule.members:
        return None
    found = [m.discriminator for m in rule.members]
    if any(d is None for d in found):
        return None
    first = found[0]
    assert first is not None
    if any(d is not None and (d.path, d.casefold) != (first.path, first.casefold)
           for d in found):
        return None
    values = frozenset(v for d in found if d is not None for v in d.values)
    return Discriminator(first.path, values, first.casefold)


def load_dir(directory: Path) -> RuleSet:
    """Every rule file of the directory, or RuleError for the first that does not load
    (the whole set is refused)."""
    return RuleSet(load_file(p) for p in rule_paths(directory))


def _signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    out = []
    if directory.is_dir():
        for p in sorted(directory.iterdir()):
            try:
                st = p.stat()
            except OSError:
                continue
            out.append((p.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


class RuleSource:
    """The rules directory, reloaded when a file changes. A change that does not load is
    refused whole: the previous rules keep running and `error` says why."""

    def __init__(self, directory: Path, *, check_every: float = 1.0) -> None:
        self.directory = directory
        self._check_every = check_every
        self._lock = threading.Lock()
        self._checked = 0.0
        self._sig: tuple[tuple[str, int, int], ...] | None = None
        self.ruleset = RuleSet()
        self.alerting_text: str | None = None
        self.error: str | None = None
        self.loaded_at: float | None = None
        self.generation = 0
        self.refresh(force=True)

    def current(self) -> RuleSet:
        self.refresh()
        return self.ruleset

    def refresh(self, *, force: bool = False) -> bool:
        """Reload if the directory changed; True if a new set was swapped in."""
        with self._lock:
            now = time.monotonic()
            if not force and now - self._checked < self._check_every:
                return False
            self._checked = now
            sig = _signature(self.directory)
            if sig == self._sig and not force:
                return False
            self._sig = sig
            try:
                ruleset = load_dir(self.directory)
                alerting = self.directory / ALERTING_FILE
                text = alerting.read_text(encoding="utf-8") if alerting.is_file() else None
                self._check_alerting(text)
            except (RuleError, OSError) as exc:
                self.error = str(exc)
                return False
            self.ruleset, self.alerting_text, self.error = ruleset, text, None
            self.loaded_at = time.time()
            self.generation += 1
            return True

    def _check_alerting(self, text: str | None) -> None:
        from auditkeep.detect.alerting import parse_alerting
        from auditkeep.errors import ConfigError

        if text is None:
            return
        try:
            parse_alerting(text, ALERTING_FILE)
        except ConfigError as exc:
            raise RuleError(str(self.directory / ALERTING_FILE), str(exc)) from None


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
