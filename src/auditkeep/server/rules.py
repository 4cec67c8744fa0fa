"""The rules in force and their files: `GET /v1/rules`, `GET|PUT|DELETE /v1/rules/{file}`.

The rules directory stays the one source of truth: PUT checks the new file together
with every other one (as the engine would load them) and only then writes it, so a
rule that would not load is refused with its reason and the running set is untouched.
Writing needs the admin scope; reading, read or audit.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from auditkeep.detect.rules import Rule, RuleError
from auditkeep.detect.ruleset import (
    ALERTING_FILE,
    RuleFile,
    RuleSet,
    load_file,
    load_text,
    rule_paths,
    write_atomically,
)
from auditkeep.detect.service import Detection
from auditkeep.errors import FieldProblem, NotFoundError, ValidationError
from auditkeep.server import params
from auditkeep.server.context import caller, json_response, node

FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.ya?ml")
MAX_FILE = 1024 * 1024


def _detection(request: Request) -> Detection:
    d: Detection | None = node(request).options.get("detection")
    if d is None:
        raise NotFoundError("detection is not running on this server (serve --no-detection)")
    return d


def rule_json(r: Rule) -> dict[str, Any]:
    return {"id": r.id, "title": r.title, "kind": r.kind, "level": r.level,
            "tags": list(r.tags), "origin": r.origin, "file": Path(r.file).name,
            "enabled": r.enabled, "generates": r.generate, "query": r.query or None,
            "group_by": list(r.group_by), "window_s": r.window or None,
            "members": [m.id for m in r.members], "tenants": list(r.tenants)}


async def list_rules(request: Request) -> Response:
    caller(request).require("read", "audit")
    params.only(request, set())
    d = _detection(request)
    rules = d.rules.current()
    return json_response({"rules": [rule_json(r) for r in rules.rules],
                          "error": d.rules.error, "generation": d.rules.generation})


def _file(request: Request, d: Detection) -> Path:
    name: str = request.path_params["file"]
    if not FILE.fullmatch(name):
        raise ValidationError(f"rule file name {name!r} is not allowed", problems=[
            FieldProblem("/path/file", "not a rule file name",
                         "1-100 of A-Z a-z 0-9 . _ - ending in .yml or .yaml", name)])
    return d.rules.directory / name


async def get_rule_file(request: Request) -> Response:
    caller(request).require("read", "audit")
    path = _file(request, _detection(request))
    if not path.is_file():
        raise NotFoundError(f"no rule file {path.name!r}")
    return Response(path.read_bytes(), media_type="application/yaml")


async def put_rule_file(request: Request) -> Response:
    caller(request).require("admin")
    d = _detection(request)
    path = _file(request, d)
    raw = await request.body()
    if len(raw) > MAX_FILE:
        raise ValidationError(f"a rule file is at most {MAX_FILE} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("a rule file is UTF-8 YAML", problems=[
            FieldProblem("", "not UTF-8", "UTF-8 YAML text", "")]) from None
    try:
        if path.name == ALERTING_FILE:
            _check_alerting(text)
            loaded: list[RuleFile] = []
        else:
            others = [load_file(p) for p in rule_paths(d.rules.directory) if p != path]
            loaded = [load_text(text, path.name)]
            RuleSet([*others, *loaded])  # ids unique across the directory
    except RuleError as exc:
        raise ValidationError(f"rule file refused: {exc}", problems=[
            FieldProblem("", exc.reason, "a rule file the engine can run", exc.where)]) from None
    d.rules.directory.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text)
    d.rules.refresh(force=True)
    return json_response({"file": path.name, "rules": [rule_json(r) for f in loaded
                                                       for r in f.rules],
                          "error": d.rules.error, "generation": d.rules.generation})


def _check_alerting(text: str) -> None:
    from auditkeep.detect.alerting import parse_alerting
    from auditkeep.errors import ConfigError

    try:
        parse_alerting(text, ALERTING_FILE)
    except ConfigError as exc:
        raise RuleError(ALERTING_FILE, str(exc)) from None


async def delete_rule_file(request: Request) -> Response:
    caller(request).require("admin")
    d = _detection(request)
    path = _file(request, d)
    if not path.is_file():
        raise NotFoundError(f"no rule file {path.name!r}")
    path.unlink()
    d.rules.refresh(force=True)
    return Response(status_code=204)
