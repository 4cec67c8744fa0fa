"""The agent's configuration: a YAML file (or command-line flags) checked all at once.

Every problem is reported with its path (`files[1].format: expected one of json,
k8s-audit, got 'xml'`), not just the first. The result is plain data; `runner` builds the
running agent from it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from auditkeep.errors import ConfigError, FieldProblem

Format = Literal["json", "k8s-audit"]
FORMATS = ("json", "k8s-audit")
K8S_STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
DEFAULT_K8S_STAGES = ("ResponseComplete", "Panic")
START_AT = ("beginning", "end")
ON_FULL = ("block", "drop")
TOKEN_ENV = "AUDITKEEP_TOKEN"  # noqa: S105  # the name of a variable, not a secret


@dataclass(frozen=True, slots=True)
class FileConfig:
    """One file to follow."""

    path: Path
    format: Format
    stages: tuple[str, ...] | None  # k8s-audit: the stages kept (None: every stage)
    start_at: str  # where to begin in a file the agent has never seen: beginning | end


@dataclass(frozen=True, slots=True)
class AgentConfig:
    url: str
    token: str
    state_dir: Path
    files: tuple[FileConfig, ...]
    tenant: str | None = None
    poll_interval: float = 0.25
    rotate_wait: float = 5.0
    max_line_bytes: int = 4 << 20
    metrics_port: int | None = None
    metrics_address: str = "127.0.0.1"
    spool_limit: int = 256 << 20
    on_full: str = "block"
    batch_size: int = 500
    batch_age: float = 0.2


class _Check:
    """Collects problems while reading untrusted configuration data."""

    __slots__ = ("problems",)

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []  # (path, message)

    def fail(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    def keys(self, path: str, obj: Mapping[Any, Any], allowed: tuple[str, ...]) -> None:
        for key in obj:
            if key not in allowed:
                where = f"{path}.{key}" if path else str(key)
                self.fail(where, f"unknown key (expected one of {', '.join(allowed)})")

    def text(self, path: str, value: Any, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.fail(path, "required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"expected a non-empty string, got {_show(value)}")
            return None
        return value

    def number(self, path: str, value: Any, default: float, lo: float, hi: float) -> float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            self.fail(path, f"expected a number from {lo:g} to {hi:g}, got {_show(value)}")
            return default
        return float(value)

    def integer(self, path: str, value: Any, default: int, lo: int, hi: int) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            self.fail(path, f"expected an integer from {lo} to {hi}, got {_show(value)}")
            return default
        return value

    def choice(self, path: str, value: Any, choices: tuple[str, ...], default: str) -> str:
        if value is None:
            return default
        if value not in choices:
            self.fail(path, f"expected one of {', '.join(choices)}, got {_show(value)}")
            return default
        return str(value)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


TOP_KEYS = ("url", "token", "token_file", "tenant", "state_dir", "files", "poll_interval",
            "rotate_wait", "max_line_bytes", "metrics_port", "metrics_address", "spool_limit",
            "on_full", "batch_size", "batch_age")
FILE_KEYS = ("path", "format", "stages", "start_at")


def parse_config(data: Any, *, base: Path | None = None,
                 env: Mapping[str, str] | None = None, source: str = "configuration"
                 ) -> AgentConfig:
    """Check `data` (decoded YAML, or a dict built from flags) and build the config;
    relative paths are taken from `base`. Raises ConfigError listing every problem."""
    base = base or Path.cwd()
    env = os.environ if env is None else env
    c = _Check()
    if not isinstance(data, Mapping):
        c.fail("(top)", f"expected a mapping of settings, got {_show(data)}")
        _raise(c, source)
    c.keys("", data, TOP_KEYS)
    url = c.text("url", data.get("url"), required=True)
    if url is not None and not url.startswith(("http://", "https://")):
        c.fail("url", f"expected an http:// or https:// URL, got {url!r}")
    token = _token(c, data, base, env)
    tenant = c.text("tenant", data.get("tenant"))
    state = c.text("state_dir", data.get("state_dir"), required=True)
    files = _files(c, data.get("files"), base)
    port = data.get("metrics_port")
    metrics_port = None if port is None else c.integer("metrics_port", port, 0, 1, 65535)
    cfg = AgentConfig(
        url=url or "", token=token or "", state_dir=base / (state or "."), files=files,
        tenant=tenant,
        poll_interval=c.number("poll_interval", data.get("poll_interval"), 0.25, 0.01, 60),
        rotate_wait=c.number("rotate_wait", data.get("rotate_wait"), 5.0, 0, 3600),
        max_line_bytes=c.integer("max_line_bytes", data.get("max_line_bytes"), 4 << 20,
                                 1024, 256 << 20),
        metrics_port=metrics_port,
        metrics_address=c.text("metrics_address", data.get("metrics_address")) or "127.0.0.1",
        spool_limit=c.integer("spool_limit", data.get("spool_limit"), 256 << 20, 1 << 16,
                              1 << 40),
        on_full=c.choice("on_full", data.get("on_full"), ON_FULL, "block"),
        batch_size=c.integer("batch_size", data.get("batch_size"), 500, 1, 10_000),
        batch_age=c.number("batch_age", data.get("batch_age"), 0.2, 0.001, 60),
    )
    _raise(c, source)
    return cfg


def _token(c: _Check, data: Mapping[str, Any], base: Path, env: Mapping[str, str]
           ) -> str | None:
    token = c.text("token", data.get("token"))
    token_file = c.text("token_file", data.get("token_file"))
    if token is not None and token_file is not None:
        c.fail("token_file", "give token or token_file, not both")
    if token_file is not None:
        try:
            token = (base / token_file).read_text().strip()
        except OSError as exc:
            c.fail("token_file", f"cannot read {base / token_file}: {exc.strerror}")
            return None
        if not token:
            c.fail("token_file", f"{base / token_file} is empty")
    if token is None and "token" not in data and "token_file" not in data:
        token = env.get(TOKEN_ENV) or None
        if token is None:
            c.fail("token", f"required (or token_file, or ${TOKEN_ENV})")
    return token


def _files(c: _Check, value: Any, base: Path) -> tuple[FileConfig, ...]:
    if value is None:
        c.fail("files", "required: a list of files to follow")
        return ()
    if not isinstance(value, list) or not value:
        c.fail("files", f"expected a non-empty list, got {_show(value)}")
        return ()
    out: list[FileConfig] = []
    seen: dict[Path, int] = {}
    for i, item in enumerate(value):
        at = f"files[{i}]"
        if not isinstance(item, Mapping):
            c.fail(at, f"expected a mapping with path and format, got {_show(item)}")
            continue
        c.keys(at, item, FILE_KEYS)
        path = c.text(f"{at}.path", item.get("path"), required=True)
        fmt = item.get("format")
        if fmt is None:
            c.fail(f"{at}.format", f"required: one of {', '.join(FORMATS)}")
        else:
            fmt = c.choice(f"{at}.format", fmt, FORMATS, "")
        stages = _stages(c, f"{at}.stages", item.get("stages"), fmt)
        start_at = c.choice(f"{at}.start_at", item.get("start_at"), START_AT, "beginning")
        if path is None or fmt not in FORMATS:
            continue
        full = Path(os.path.abspath(base / path))
        if full in seen:
            c.fail(f"{at}.path", f"{full} is already followed by files[{seen[full]}]")
            continue
        seen[full] = i
        kind: Format = "json" if fmt == "json" else "k8s-audit"
        out.append(FileConfig(full, kind, stages, start_at))
    return tuple(out)


def _stages(c: _Check, at: str, value: Any, fmt: Any) -> tuple[str, ...] | None:
    if value is None:
        return DEFAULT_K8S_STAGES if fmt == "k8s-audit" else None
    if fmt != "k8s-audit":
        c.fail(at, "only for format k8s-audit")
        return None
    if value == "all":
        return None
    if not isinstance(value, list) or not value:
        c.fail(at, f"expected a list of stages or 'all', got {_show(value)}")
        return None
    for j, s in enumerate(value):
        if s not in K8S_STAGES:
            c.fail(f"{at}[{j}]", f"expected one of {', '.join(K8S_STAGES)}, got {_show(s)}")
    return tuple(s for s in value if s in K8S_STAGES)


def _pointer(path: str) -> str:
    """`files[1].format` as the JSON pointer `/files/1/format`."""
    if path == "(top)":
        return ""
    return "/" + path.replace("[", ".").replace("]", "").replace(".", "/")


def _raise(c: _Check, source: str) -> None:
    if not c.problems:
        return
    shown = "; ".join(f"{p}: {m}" for p, m in c.problems)
    n = len(c.problems)
    raise ConfigError(f"{source}: {n} problem{'s' if n > 1 else ''}: {shown}",
                      problems=[FieldProblem(_pointer(p), m) for p, m in c.problems])


def load_config(path: Path, *, env: Mapping[str, str] | None = None) -> AgentConfig:
    """Read and check a YAML configuration file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        what = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{where}: not valid YAML: {what}") from None
    return parse_config(data, base=path.parent, env=env, source=str(path))


def config_from_flags(*, url: str | None, token: str | None, state_dir: str | None,
                      files: list[tuple[str, str]], tenant: str | None = None,
                      metrics_port: int | None = None,
                      env: Mapping[str, str] | None = None) -> AgentConfig:
    """The same configuration from command-line flags, checked by the same rules."""
    data: dict[str, Any] = {"url": url, "state_dir": state_dir,
                            "files": [{"path": p, "format": f} for p, f in files] or None}
    optional: dict[str, Any] = {"token": token, "tenant": tenant, "metrics_port": metrics_port}
    data.update({k: v for k, v in optional.items() if v is not None})
    return parse_config(data, env=env, source="flags")

__all__ = ["AgentConfig", "FileConfig", "config_from_flags", "load_config", "parse_config"]
