"""The server's configuration file: which sources are on, the pipeline stages and their
order, globally and per tenant.

The file is checked whole before anything starts: every problem is reported with its
path and line (`auditkeep.yaml:14:9: tenants.acme.pipeline[2].sample.rate: expected a
number from 0 to 1, got 1.5`), not just the first. The result is plain data; it builds
the runtime objects (`ServerConfig.pipeline_for`, `GenericSourceConfig.mapping`).
docs/pipeline.md is the reference.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

from auditkeep.agent.config import K8S_STAGES
from auditkeep.errors import ConfigError, FieldProblem
from auditkeep.pipeline.config_keeping import (
    ArchiveConfig,
    RetentionConfig,
    WitnessConfig,
    parse_archive,
    parse_retention,
    parse_witnesses,
)
from auditkeep.pipeline.config_ops import (
    DEFAULT_SLOS,
    CanaryConfig,
    ReadinessConfig,
    SelfAuditConfig,
    SloConfig,
    parse_canary,
    parse_readiness,
    parse_self_audit,
    parse_slos,
)
from auditkeep.pipeline.schema import TENANT_PATTERN
from auditkeep.pipeline.stages import (
    ActionCase,
    EmailCase,
    Enrich,
    Normalise,
    Pipeline,
    Sample,
    Stage,
    Validate,
)
from auditkeep.pipeline.validate import MAX_SAFE_INT
from auditkeep.privacy.detectors import DEFAULT_DETECTORS, DETECTORS
from auditkeep.privacy.paths import PathError, parse_pattern
from auditkeep.privacy.policy import (
    DETECT_ACTIONS,
    FIELD_ACTIONS,
    DetectAction,
    FieldAction,
    RedactionPolicy,
    RedactRule,
)
from auditkeep.privacy.pseudonyms import tenant_key
from auditkeep.sources.generic import NAME_PATTERN, FieldRule, GenericMapping, parse_map
from auditkeep.sources.k8s import DEFAULT_STAGES as K8S_DEFAULT_STAGES

Parts = tuple[str | int, ...]
SchemaViolations = Literal["reject", "flag"]
SCHEMA_VIOLATIONS = ("reject", "flag")
API_SOURCE = "api"  # events posted to /v1/events in schema v1
GENERIC_PREFIX = "/v1/sources/generic/"
MAX_SOURCE_METADATA = 20


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong with a configuration file: where (path in the file, and line and
    column when known, 1-based) and what. `str()` gives `source:line:column: path:
    message`, the form editors and CI logs link to."""

    source: str  # the file's name
    path: str  # e.g. tenants.acme.pipeline[2].sample.rate; "(top)" for the whole file
    message: str
    line: int | None = None
    column: int | None = None
    pointer: str = ""  # the same place as a JSON pointer

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}:{self.column}" if self.line else self.source
        return f"{where}: {self.path}: {self.message}"


# -- the configuration model -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ValidateConfig:
    """`validate`: schema v1 at this point of the pipeline."""

    kind: ClassVar[str] = "validate"

    def build(self, ingest: Mapping[str, Any], key: bytes) -> Stage:
        return Validate()


@dataclass(frozen=True, slots=True)
class NormaliseConfig:
    """`normalise` (also spelt `normalize`)."""

    kind: ClassVar[str] = "normalise"
    text: bool = True
    enums: bool = True
    email: EmailCase = "domain"
    ip: bool = True
    action: ActionCase = "keep"

    def build(self, ingest: Mapping[str, Any], key: bytes) -> Stage:
        return Normalise(text=self.text, enums=self.enums, email=self.email, ip=self.ip,
                         action=self.action)


@dataclass(frozen=True, slots=True)
class EnrichConfig:
    """`enrich`: static fields, user-agent parsing, the source's own metadata."""

    kind: ClassVar[str] = "enrich"
    static: Mapping[str, Any] = field(default_factory=dict)
    user_agent: bool = False
    source_metadata: bool = False

    def build(self, ingest: Mapping[str, Any], key: bytes) -> Stage:
        return Enrich(static=self.static, user_agent=self.user_agent,
                      ingest=ingest if self.source_metadata else None)


@dataclass(frozen=True, slots=True)
class SampleConfig:
    """`sample`: keep `rate` of the matching events (never the protected ones)."""

    kind: ClassVar[str] = "sample"
    rate: float
    actions: tuple[str, ...] = ()
    reason: str = "sampled"

    def build(self, ingest: Mapping[str, Any], key: bytes) -> Stage:
        return Sample(self.rate, actions=self.actions, reason=self.reason)


@dataclass(frozen=True, slots=True)
class RedactConfig:
    """`redact`: field rules, detectors and secret keys (privacy/policy.py)."""

    kind: ClassVar[str] = "redact"
    fields: tuple[RedactRule, ...] = ()
    detectors: tuple[str, ...] = DEFAULT_DETECTORS
    actions: Mapping[str, DetectAction] = field(default_factory=dict)
    secret_keys: bool = True
    raw: bool = True

    def build(self, ingest: Mapping[str, Any], key: bytes) -> Stage:
        return RedactionPolicy(self.fields, detectors=self.detectors, actions=self.actions,
                               secret_keys=self.secret_keys, raw=self.raw, key=key)


StageConfig = ValidateConfig | NormaliseConfig | EnrichConfig | SampleConfig | RedactConfig


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """A built-in HTTP source (`cloudtrail`, `gcp`, `otlp`): on or off."""

    enabled: bool = True
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class K8sSourceConfig:
    enabled: bool = True
    stages: frozenset[str] | None = K8S_DEFAULT_STAGES  # None: every stage
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SyslogSourceConfig:
    enabled: bool = False
    tcp: tuple[str, int] | None = None
    udp: tuple[str, int] | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tenant: str = "default"
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GenericSourceConfig:
    """A declarative mapping for a JSON producer, served at `path`."""

    name: str
    path: str
    rules: tuple[FieldRule, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """Its name as a source (for `pipeline_for` and raw originals): generic.NAME."""
        return f"generic.{self.name}"

    def mapping(self) -> GenericMapping:
        return GenericMapping(self.name, self.rules)


@dataclass(frozen=True, slots=True)
class SourcesConfig:
    k8s: K8sSourceConfig = K8sSourceConfig()
    cloudtrail: SourceConfig = SourceConfig()
    gcp: SourceConfig = SourceConfig()
    otlp: SourceConfig = SourceConfig()
    syslog: SyslogSourceConfig = SyslogSourceConfig()
    generic: tuple[GenericSourceConfig, ...] = ()

    def metadata_for(self, source: str) -> Mapping[str, Any]:
        """The `metadata` configured for a source: k8s, cloudtrail, gcp, otlp, syslog,
        generic.NAME (nothing for `api` or an unknown name)."""
        builtin: dict[str, Mapping[str, Any]] = {
            "k8s": self.k8s.metadata, "cloudtrail": self.cloudtrail.metadata,
            "gcp": self.gcp.metadata, "otlp": self.otlp.metadata,
            "syslog": self.syslog.metadata}
        if source in builtin:
            return builtin[source]
        for g in self.generic:
            if g.source == source:
                return g.metadata
        return {}


@dataclass(frozen=True, slots=True)
class TenantConfig:
    pipeline: tuple[StageConfig, ...] = ()
    extends: Literal["global", "none"] = "global"  # global: the global stages run first
    schema_violations: SchemaViolations | None = None  # None: the file's default


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """The whole file. Build runtime objects from it; it is not one itself."""

    origin_prefix: str | None = None
    sources: SourcesConfig = SourcesConfig()
    pipeline: tuple[StageConfig, ...] = ()
    tenants: Mapping[str, TenantConfig] = field(default_factory=dict)
    schema_violations: SchemaViolations = "reject"
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    archive: ArchiveConfig | None = None  # None: no cold archive configured
    witnesses: tuple[WitnessConfig, ...] = ()
    slos: tuple[SloConfig, ...] = DEFAULT_SLOS  # docs/slos.md
    canary: CanaryConfig = field(default_factory=CanaryConfig)
    self_audit: SelfAuditConfig = field(default_factory=SelfAuditConfig)
    readiness: ReadinessConfig = field(default_factory=ReadinessConfig)

    def stages_for(self, tenant: str) -> tuple[StageConfig, ...]:
        """The stage configs that run for `tenant`, in order."""
        t = self.tenants.get(tenant)
        if t is None:
            return self.pipeline
        return (*self.pipeline, *t.pipeline) if t.extends == "global" else t.pipeline

    def pipeline_for(self, tenant: str, source: str = API_SOURCE, *, secret: bytes = b""
                     ) -> Pipeline:
        """A new pipeline for events of `tenant` that came in through `source` (`api`,
        `k8s`, ..., `generic.NAME`); callers keep it, building loads rules. `secret`:
        the store's pseudonym secret, which `redact`'s `hash` needs."""
        ingest = {"source": source, **self.sources.metadata_for(source)}
        key = tenant_key(secret, tenant) if secret else b""
        return Pipeline([s.build(ingest, key) for s in self.stages_for(tenant)])

    def schema_violations_for(self, tenant: str) -> SchemaViolations:
        """What happens to an event that breaks its action's schema: reject or flag."""
        t = self.tenants.get(tenant)
        return (t.schema_violations if t is not None else None) or self.schema_violations

    @property
    def stage_count(self) -> int:
        """Stages written in the file, global and per tenant."""
        return len(self.pipeline) + sum(len(t.pipeline) for t in self.tenants.values())


# -- reading and checking ----------------------------------------------------------------

def read_config(text: str, source_name: str = "configuration", *, base: Path | None = None
                ) -> tuple[ServerConfig | None, list[ConfigProblem]]:
    """Check a configuration file's text; the config, or None and every problem.
    Relative file paths (syslog TLS) are taken from `base` (default: the current
    directory) and must exist."""
    c = _Check()
    try:
        data = c.load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        what = getattr(exc, "problem", None) or str(exc)
        context, started = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and started is not None and started is not mark:
            context += f" started at line {started.line + 1}, column {started.column + 1}"
        return None, [ConfigProblem(
            source_name, "(top)", f"not valid YAML: {what}" + (f" ({context})" if context else ""),
            mark.line + 1 if mark else None, mark.column + 1 if mark else None)]
    cfg = _server_config(c, data, base or Path.cwd())
    problems = c.report(source_name)
    return (None if problems else cfg), problems


def check_config(text: str, source_name: str = "configuration", *, base: Path | None = None
                 ) -> list[ConfigProblem]:
    """Every problem in a configuration file's text (empty when it is good)."""
    return read_config(text, source_name, base=base)[1]


def parse_config(text: str, source_name: str = "configuration", *, base: Path | None = None
                 ) -> ServerConfig:
    """The configuration in `text`; raises ConfigError listing every problem."""
    cfg, problems = read_config(text, source_name, base=base)
    if cfg is None:
        n = len(problems)
        shown = "; ".join(str(p) for p in problems)
        raise ConfigError(f"{source_name}: {n} problem{'s' if n > 1 else ''}: {shown}",
                          problems=[FieldProblem(p.pointer, p.message) for p in problems])
    return cfg


def load_config(path: Path) -> ServerConfig:
    """Read and check a YAML configuration file (`auditkeep serve --config FILE`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_config(text, str(path), base=path.parent)


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_MAX_NODES = 100_000  # a configuration file is small; aliases must not make it huge


def render_path(parts: Parts) -> str:
    """`("tenants", "acme", "pipeline", 2, "sample", "rate")` as
    `tenants.acme.pipeline[2].sample.rate`; keys with dots are quoted: `static["a.b"]`."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _PLAIN_KEY.match(p):
            out += f".{p}" if out else p
        else:
            out += f"[{json.dumps(p)}]"
    return out or "(top)"


def _pointer(parts: Parts) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


class _Check:
    """Collects problems, each with its path, while reading untrusted configuration
    data; knows where each path is in the YAML text."""

    __slots__ = ("exact", "marks", "problems")

    def __init__(self) -> None:
        self.problems: list[tuple[Parts, str]] = []
        self.exact: dict[int, tuple[int, int]] = {}  # problem number -> its own mark
        self.marks: dict[Parts, tuple[int, int]] = {}

    def load_yaml(self, text: str) -> Any:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            self._walk(node, (), [0])
            return loader.construct_document(node)
        finally:
            loader.dispose()

    def _walk(self, node: yaml.Node, at: Parts, budget: list[int]) -> None:
        budget[0] += 1
        if budget[0] > _MAX_NODES or len(at) > 64:
            return
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                here = (*at, str(key_node.value))
                if key_node.value in seen:
                    self.exact[len(self.problems)] = (key_node.start_mark.line + 1,
                                                      key_node.start_mark.column + 1)
                    self.fail(here, "duplicate key (only the last value would count)")
                seen.add(key_node.value)
                self.marks.setdefault(here, (key_node.start_mark.line + 1,
                                             key_node.start_mark.column + 1))
                self._walk(value_node, here, budget)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                here = (*at, i)
                self.marks.setdefault(here, (item.start_mark.line + 1,
                                             item.start_mark.column + 1))
                self._walk(item, here, budget)

    def report(self, source: str) -> list[ConfigProblem]:
        out = []
        for i, (at, message) in enumerate(self.problems):
            line, column = self.exact.get(i, (None, None))
            for n in range(len(at) if line is None else 0, 0, -1):
                if (mark := self.marks.get(at[:n])) is not None:
                    line, column = mark
                    break
            out.append(ConfigProblem(source, render_path(at), message, line, column,
                                     _pointer(at)))
        out.sort(key=lambda p: (p.line or 0, p.column or 0))
        return out

    def fail(self, at: Parts, message: str) -> None:
        self.problems.append((at, message))

    def keys(self, at: Parts, obj: Mapping[Any, Any], allowed: tuple[str, ...]) -> None:
        for key in obj:
            if key not in allowed:
                self.fail((*at, str(key)), f"unknown key (expected one of {', '.join(allowed)})")

    def mapping(self, at: Parts, value: Any, what: str) -> Mapping[Any, Any]:
        """`value` as a mapping (null: empty); anything else is a problem."""
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.fail(at, f"expected {what}, got {_show(value)}")
            return {}
        return value

    def text(self, at: Parts, value: Any, *, required: bool = False) -> str | None:
        if value is None:
            if required:
                self.fail(at, "required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(at, f"expected a non-empty string, got {_show(value)}")
            return None
        return value

    def number(self, at: Parts, value: Any, lo: float, hi: float) -> float | None:
        if value is None:
            self.fail(at, f"required: a number from {lo:g} to {hi:g}")
            return None
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not lo <= value <= hi):
            self.fail(at, f"expected a number from {lo:g} to {hi:g}, got {_show(value)}")
            return None
        return float(value)

    def boolean(self, at: Parts, value: Any, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(at, f"expected true or false, got {_show(value)}")
            return default
        return value

    def choice(self, at: Parts, value: Any, choices: tuple[str, ...], default: str) -> str:
        if value is None:
            return default
        if value not in choices:
            self.fail(at, f"expected one of {', '.join(choices)}, got {_show(value)}")
            return default
        return str(value)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


TOP_KEYS = ("server", "sources", "pipeline", "schema_violations", "tenants", "retention",
            "archive", "witnesses", "slos", "canary", "self_audit", "readiness")
SERVER_KEYS = ("origin_prefix",)
TENANT_KEYS = ("pipeline", "extends", "schema_violations")
_ORIGIN = re.compile(r"^[\x21-\x7e]+$")  # one line of a signed note: printable, no spaces
_TENANT = re.compile(TENANT_PATTERN)


def _server_config(c: _Check, data: Any, base: Path) -> ServerConfig:
    if data is None:
        return ServerConfig()  # an empty file: every default
    if not isinstance(data, Mapping):
        c.fail((), f"expected a mapping of settings, got {_show(data)}")
        return ServerConfig()
    c.keys((), data, TOP_KEYS)
    server = c.mapping(("server",), data.get("server"), "a mapping of server settings")
    c.keys(("server",), server, SERVER_KEYS)
    origin = c.text(("server", "origin_prefix"), server.get("origin_prefix"))
    if origin is not None and not _ORIGIN.match(origin):
        c.fail(("server", "origin_prefix"),
               f"expected printable ASCII without spaces (it starts checkpoint origin "
               f"lines), got {origin!r}")
    sources = _sources(c, data.get("sources"), base)
    pipeline = _pipeline(c, ("pipeline",), data.get("pipeline"))
    violations = c.choice(("schema_violations",), data.get("schema_violations"),
                          SCHEMA_VIOLATIONS, "reject")
    tenants = _tenants(c, data.get("tenants"))
    return ServerConfig(origin, sources, pipeline, tenants,
                        "flag" if violations == "flag" else "reject",
                        retention=parse_retention(c, data.get("retention")),
                        archive=parse_archive(c, data.get("archive")),
                        witnesses=parse_witnesses(c, data.get("witnesses")),
                        slos=parse_slos(c, data.get("slos")),
                        canary=parse_canary(c, data.get("canary")),
                        self_audit=parse_self_audit(c, data.get("self_audit")),
                        readiness=parse_readiness(c, data.get("readiness")))


def _tenants(c: _Check, value: Any) -> dict[str, TenantConfig]:
    out: dict[str, TenantConfig] = {}
    for name, item in c.mapping(("tenants",), value, "a mapping of tenant names").items():
        at: Parts = ("tenants", str(name))
        if not isinstance(name, str) or not _TENANT.match(name):
            c.fail(at, f"not a tenant name (1 to 63 of a-z, 0-9 and -), got {name!r}")
        t = c.mapping(at, item, "a mapping with pipeline, extends, schema_violations")
        c.keys(at, t, TENANT_KEYS)
        pipeline = _pipeline(c, (*at, "pipeline"), t.get("pipeline"))
        extends = c.choice((*at, "extends"), t.get("extends"), ("global", "none"), "global")
        violations = c.choice((*at, "schema_violations"), t.get("schema_violations"),
                              SCHEMA_VIOLATIONS, "")
        out[str(name)] = TenantConfig(
            pipeline, "none" if extends == "none" else "global",
            "flag" if violations == "flag" else "reject" if violations == "reject" else None)
    return out


# -- stages ------------------------------------------------------------------------------

STAGE_ALIASES = {"normalize": "normalise"}
_PATTERN = re.compile(r"^[A-Za-z0-9_:*/.-]+$")  # the characters of actions, and `*`
_REASON = re.compile(r"^[a-z0-9_.:-]{1,64}$")
SOURCE_FIELDS = ("service", "version", "host", "region", "environment")


def _pipeline(c: _Check, at: Parts, value: Any) -> tuple[StageConfig, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        c.fail(at, f"expected a list of stages, got {_show(value)}")
        return ()
    out: list[StageConfig] = []
    for i, item in enumerate(value):
        here: Parts = (*at, i)
        if isinstance(item, str):
            kind, options, where = item, None, (*here, item)
        elif isinstance(item, Mapping) and len(item) == 1:
            ((kind, options),) = item.items()
            where = (*here, str(kind))
        else:
            c.fail(here, f"expected one stage as `- {{name: {{options}}}}` or `- name` "
                         f"(one of {', '.join(STAGES)}), got {_describe(item)}")
            continue
        kind = STAGE_ALIASES.get(kind, kind)
        parse = STAGES.get(kind) if isinstance(kind, str) else None
        if parse is None:
            c.fail(here, f"unknown stage {kind!r} (expected one of {', '.join(STAGES)})")
            continue
        opts = c.mapping(where, options, f"a mapping of {kind} options")
        stage = parse(c, where, opts)
        if stage is not None:
            out.append(stage)
    return tuple(out)


def _describe(item: Any) -> str:
    if isinstance(item, Mapping):
        return f"a mapping with {len(item)} keys"
    return _show(item)


def _validate(c: _Check, at: Parts, opts: Mapping[Any, Any]) -> StageConfig:
    c.keys(at, opts, ())
    return ValidateConfig()


def _normalise(c: _Check, at: Parts, opts: Mapping[Any, Any]) -> StageConfig:
    c.keys(at, opts, ("text", "enums", "email", "ip", "action"))
    email = c.choice((*at, "email"), opts.get("email"), ("domain", "lower", "keep"), "domain")
    action = c.choice((*at, "action"), opts.get("action"), ("keep", "lower"), "keep")
    return NormaliseConfig(
        text=c.boolean((*at, "text"), opts.get("text"), True),
        enums=c.boolean((*at, "enums"), opts.get("enums"), True),
        email="lower" if email == "lower" else "keep" if email == "keep" else "domain",
        ip=c.boolean((*at, "ip"), opts.get("ip"), True),
        action="lower" if action == "lower" else "keep")


def _enrich(c: _Check, at: Parts, opts: Mapping[Any, Any]) -> StageConfig | None:
    c.keys(at, opts, ("static", "user_agent", "source_metadata"))
    static = _static(c, (*at, "static"), opts.get("static"))
    user_agent = c.boolean((*at, "user_agent"), opts.get("user_agent"), False)
    source_metadata = c.boolean((*at, "source_metadata"), opts.get("source_metadata"), False)
    if not (static or user_agent or source_metadata):
        if not any(p[:len(at)] == at for p, _ in c.problems):
            c.fail(at, "does nothing: give static, user_agent: true or source_metadata: true")
        return None
    return EnrichConfig(static, user_agent, source_metadata)


def _static(c: _Check, at: Parts, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in c.mapping(at, value, "a mapping of dotted fields to values").items():
        here = (*at, str(key))
        head, _, rest = str(key).partition(".")
        if head == "source" and rest in SOURCE_FIELDS:
            if not isinstance(v, str) or not v.strip() or len(v) > 256:
                c.fail(here, f"expected a non-empty string of at most 256 characters, got "
                             f"{_show(v)}")
                continue
        elif head == "metadata" and rest and all(rest.split(".")):
            if not _scalar(v):
                c.fail(here, f"expected a string, number or true/false, got {_show(v)}")
                continue
        else:
            c.fail(here, f"expected source.<{'|'.join(SOURCE_FIELDS)}> or metadata.<key>, "
                         f"got {str(key)!r}")
            continue
        out[str(key)] = v
    for key in out:
        for other in out:
            if other.startswith(key + "."):
                c.fail((*at, other), f"conflicts with {key!r}, which sets a value there")
    return out


def _scalar(v: Any) -> bool:
    if isinstance(v, bool) or (isinstance(v, str) and v):
        return True
    if isinstance(v, int):
        return -MAX_SAFE_INT <= v <= MAX_SAFE_INT
    return isinstance(v, float) and math.isfinite(v)


def _sample(c: _Check, at: Parts, opts: Mapping[Any, Any]) -> StageConfig | None:
    c.keys(at, opts, ("rate", "actions", "reason"))
    rate = c.number((*at, "rate"), opts.get("rate"), 0, 1)
    actions: list[str] = []
    raw = opts.get("actions")
    if raw is not None and (not isinstance(raw, list) or not raw):
        c.fail((*at, "actions"), f"expected a non-empty list of action patterns, got "
                                 f"{_show(raw)}")
    elif raw is not None:
        for j, p in enumerate(raw):
            if not isinstance(p, str) or not _PATTERN.match(p):
                c.fail((*at, "actions", j), f"expected an action pattern such as "
                                            f"k8s.*.get, got {_show(p)}")
            else:
                actions.append(p)
    reason = c.text((*at, "reason"), opts.get("reason")) or "sampled"
    if not _REASON.match(reason):
        c.fail((*at, "reason"), f"expected 1 to 64 of a-z, 0-9 and _.:- (it is a metric "
                                f"label), got {reason!r}")
    if rate is None:
        return None
    return SampleConfig(rate, tuple(actions), reason)


FIELD_RULE_KEYS = ("path", "action", "keep_start", "keep_end")


def _redact(c: _Check, at: Parts, opts: Mapping[Any, Any]) -> StageConfig | None:
    c.keys(at, opts, ("fields", "detectors", "actions", "secret_keys", "raw"))
    rules: list[RedactRule] = []
    given = opts.get("fields")
    if given is not None and not isinstance(given, list):
        c.fail((*at, "fields"), f"expected a list of field rules, got {_show(given)}")
        given = []
    for j, item in enumerate(given or []):
        here: Parts = (*at, "fields", j)
        r = c.mapping(here, item, "a field rule {path, action}")
        c.keys(here, r, FIELD_RULE_KEYS)
        path = c.text((*here, "path"), r.get("path"), required=True)
        action = c.choice((*here, "action"), r.get("action"), FIELD_ACTIONS, "")
        if not r.get("action"):
            c.fail((*here, "action"), f"required: one of {', '.join(FIELD_ACTIONS)}")
        keep = [c.number((*here, k), r.get(k, 0), 0, 64) for k in ("keep_start", "keep_end")]
        if path is None or not action:
            continue
        try:
            parse_pattern(path)
        except PathError as exc:
            c.fail((*here, "path"), str(exc))
            continue
        if "keep_start" in r or "keep_end" in r:
            if action != "mask":
                c.fail(here, "keep_start and keep_end are options of `mask` only")
            if any(k is not None and k != int(k) for k in keep):
                c.fail(here, "keep_start and keep_end are whole numbers")
        start, end = (int(k) if k is not None else 0 for k in keep)
        if "keep_end" not in r:
            end = 4  # a mask keeps the last four by default (a card's last four)
        act: FieldAction = action  # type: ignore[assignment]  # checked by c.choice
        rules.append(RedactRule(path, act, start, end) if act == "mask"
                     else RedactRule(path, act))
    detectors = _detector_names(c, (*at, "detectors"), opts.get("detectors"))
    actions: dict[str, DetectAction] = {}
    for name, act in c.mapping((*at, "actions"), opts.get("actions"),
                               "a mapping of detector names to actions").items():
        here = (*at, "actions", str(name))
        if name not in DETECTORS:
            c.fail(here, f"unknown detector {name!r} (expected one of {', '.join(DETECTORS)})")
        elif act not in DETECT_ACTIONS:
            c.fail(here, f"expected one of {', '.join(DETECT_ACTIONS)}, got {_show(act)}")
        else:
            actions[str(name)] = act
    return RedactConfig(tuple(rules), detectors, actions,
                        c.boolean((*at, "secret_keys"), opts.get("secret_keys"), True),
                        c.boolean((*at, "raw"), opts.get("raw"), True))


def _detector_names(c: _Check, at: Parts, value: Any) -> tuple[str, ...]:
    if value is None or value == "default":
        return DEFAULT_DETECTORS
    if value == "all":
        return tuple(DETECTORS)
    if value == "none" or value == []:
        return ()
    if not isinstance(value, list):
        c.fail(at, f"expected default, all, none or a list of detector names, got "
                   f"{_show(value)}")
        return DEFAULT_DETECTORS
    out = []
    for j, name in enumerate(value):
        if name not in DETECTORS:
            c.fail((*at, j), f"unknown detector {_show(name)} (expected one of "
                             f"{', '.join(DETECTORS)})")
        else:
            out.append(str(name))
    return tuple(dict.fromkeys(out))


STAGES = {"validate": _validate, "normalise": _normalise, "enrich": _enrich,
          "sample": _sample, "redact": _redact}


# -- sources -----------------------------------------------------------------------------

SOURCE_KEYS = ("k8s", "cloudtrail", "gcp", "otlp", "syslog", "generic")
SYSLOG_KEYS = ("enabled", "tcp", "udp", "tls", "tenant", "metadata")
GENERIC_KEYS = ("name", "path", "map", "metadata")
_SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")  # one segment, never . or ..
_GENERIC_NAME = re.compile(NAME_PATTERN)


def _sources(c: _Check, value: Any, base: Path) -> SourcesConfig:
    src = c.mapping(("sources",), value, "a mapping of sources")
    c.keys(("sources",), src, SOURCE_KEYS)
    simple = {}
    for name in ("cloudtrail", "gcp", "otlp"):
        at: Parts = ("sources", name)
        opts = _toggle(c, at, src.get(name))
        c.keys(at, opts, ("enabled", "metadata"))
        simple[name] = SourceConfig(c.boolean((*at, "enabled"), opts.get("enabled"), True),
                                    _metadata(c, (*at, "metadata"), opts.get("metadata")))
    return SourcesConfig(k8s=_k8s(c, src.get("k8s")), syslog=_syslog(c, src.get("syslog"), base),
                         generic=_generic(c, src.get("generic")), **simple)


def _toggle(c: _Check, at: Parts, value: Any) -> Mapping[Any, Any]:
    """A source's options; `name: false` is short for `name: {enabled: false}`."""
    if isinstance(value, bool):
        return {"enabled": value}
    return c.mapping(at, value, "a mapping of source options (or true/false)")


def _metadata(c: _Check, at: Parts, value: Any) -> dict[str, Any]:
    meta = c.mapping(at, value, "a mapping of names to values")
    if len(meta) > MAX_SOURCE_METADATA:
        c.fail(at, f"expected at most {MAX_SOURCE_METADATA} entries, got {len(meta)}")
    out: dict[str, Any] = {}
    for key, v in meta.items():
        if key == "source":
            c.fail((*at, "source"), "reserved: metadata.ingest.source is the source's name")
        elif not isinstance(key, str) or not key:
            c.fail((*at, str(key)), f"expected a non-empty string key, got {key!r}")
        elif not _scalar(v):
            c.fail((*at, key), f"expected a string, number or true/false, got {_show(v)}")
        else:
            out[key] = v
    return out


def _k8s(c: _Check, value: Any) -> K8sSourceConfig:
    at: Parts = ("sources", "k8s")
    opts = _toggle(c, at, value)
    c.keys(at, opts, ("enabled", "stages", "metadata"))
    raw = opts.get("stages")
    stages: frozenset[str] | None = K8S_DEFAULT_STAGES
    if raw == "all":
        stages = None
    elif raw is not None:
        if not isinstance(raw, list) or not raw:
            c.fail((*at, "stages"), f"expected a list of stages or 'all', got {_show(raw)}")
        else:
            for j, s in enumerate(raw):
                if s not in K8S_STAGES:
                    c.fail((*at, "stages", j), f"expected one of {', '.join(K8S_STAGES)}, "
                                               f"got {_show(s)}")
            stages = frozenset(s for s in raw if s in K8S_STAGES)
    return K8sSourceConfig(c.boolean((*at, "enabled"), opts.get("enabled"), True), stages,
                           _metadata(c, (*at, "metadata"), opts.get("metadata")))


def _syslog(c: _Check, value: Any, base: Path) -> SyslogSourceConfig:
    at: Parts = ("sources", "syslog")
    opts = _toggle(c, at, value)
    c.keys(at, opts, SYSLOG_KEYS)
    enabled = c.boolean((*at, "enabled"), opts.get("enabled"), value is not None)
    tcp = _address(c, (*at, "tcp"), opts.get("tcp"))
    udp = _address(c, (*at, "udp"), opts.get("udp"))
    if enabled and tcp is None and udp is None and not any(
            p[:3] in ((*at, "tcp"), (*at, "udp")) for p, _ in c.problems):
        c.fail(at, "enabled, but neither tcp nor udp gives an address to listen on")
    tls = c.mapping((*at, "tls"), opts.get("tls"), "a mapping with cert and key")
    c.keys((*at, "tls"), tls, ("cert", "key"))
    cert = _file(c, (*at, "tls", "cert"), tls.get("cert"), base, required=bool(tls))
    key = _file(c, (*at, "tls", "key"), tls.get("key"), base, required=bool(tls))
    if tls and opts.get("tcp") is None:
        c.fail((*at, "tls"), "TLS is for the TCP listener: give tcp too")
    tenant = c.text((*at, "tenant"), opts.get("tenant")) or "default"
    if not _TENANT.match(tenant):
        c.fail((*at, "tenant"), f"not a tenant name (1 to 63 of a-z, 0-9 and -), got "
                                f"{tenant!r}")
    return SyslogSourceConfig(enabled, tcp, udp, cert, key, tenant,
                              _metadata(c, (*at, "metadata"), opts.get("metadata")))


def _address(c: _Check, at: Parts, value: Any) -> tuple[str, int] | None:
    if value is None:
        return None
    host, sep, port = str(value).rpartition(":") if isinstance(value, str) else ("", "", "")
    if not sep or not port.isascii() or not port.isdigit() or int(port) > 65535:
        c.fail(at, f"expected HOST:PORT (IPv6 as [::1]:514), got {_show(value)}")
        return None
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104  # an explicit ':PORT'


def _file(c: _Check, at: Parts, value: Any, base: Path, *, required: bool) -> Path | None:
    text = c.text(at, value, required=required)
    if text is None:
        return None
    path = base / text
    if not path.is_file():
        c.fail(at, f"no such file: {path}")
        return None
    return path


def _generic(c: _Check, value: Any) -> tuple[GenericSourceConfig, ...]:
    at: Parts = ("sources", "generic")
    if value is None:
        return ()
    if not isinstance(value, list):
        c.fail(at, f"expected a list of generic sources, got {_show(value)}")
        return ()
    out: list[GenericSourceConfig] = []
    names: dict[str, int] = {}
    paths: dict[str, int] = {}
    for i, item in enumerate(value):
        here: Parts = (*at, i)
        if not isinstance(item, Mapping):
            c.fail(here, f"expected a mapping with name, path and map, got {_show(item)}")
            continue
        c.keys(here, item, GENERIC_KEYS)
        name = c.text((*here, "name"), item.get("name"), required=True)
        if name is not None and not _GENERIC_NAME.match(name):
            c.fail((*here, "name"), f"expected 1 to 63 of a-z, 0-9, _ and -, starting with a "
                                    f"letter or digit, got {name!r}")
            name = None
        elif name is not None and name in names:
            c.fail((*here, "name"), f"{name!r} is already the name of generic[{names[name]}]")
            name = None
        elif name is not None:
            names[name] = i
        path = c.text((*here, "path"), item.get("path"))
        if path is None and name is not None:
            path = GENERIC_PREFIX + name
        elif path is not None and not (path.startswith(GENERIC_PREFIX)
                                       and _SEGMENT.match(path[len(GENERIC_PREFIX):])):
            c.fail((*here, "path"), f"expected {GENERIC_PREFIX}<name> (one path segment), "
                                    f"got {path!r}")
            path = None
        elif path is not None and path in paths:
            c.fail((*here, "path"), f"{path} is already served by generic[{paths[path]}]")
            path = None
        if path is not None:
            paths.setdefault(path, i)
        rules, found = parse_map(item.get("map"))
        for sub, message in found:
            c.fail((*here, "map", *sub), message)
        metadata = _metadata(c, (*here, "metadata"), item.get("metadata"))
        if name is None or path is None or found:
            continue
        out.append(GenericSourceConfig(name, path, rules, metadata))
    return tuple(out)


__all__ = ["API_SOURCE", "ConfigProblem", "EnrichConfig", "GenericSourceConfig",
           "K8sSourceConfig", "NormaliseConfig", "SampleConfig", "ServerConfig",
           "SourceConfig", "SourcesConfig", "StageConfig", "SyslogSourceConfig",
           "TenantConfig", "ValidateConfig", "check_config", "load_config", "parse_config",
           "read_config", "render_path"]
