"""The server's configuration file: checked whole, every problem with its path and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import auditkeep.pipeline.config
from auditkeep.errors import ConfigError
from auditkeep.pipeline.config import (
    ConfigProblem,
    EnrichConfig,
    NormaliseConfig,
    SampleConfig,
    ServerConfig,
    SourcesConfig,
    TenantConfig,
    ValidateConfig,
    check_config,
    load_config,
    parse_config,
    read_config,
    render_path,
)
from auditkeep.pipeline.stages import Drop
from auditkeep.privacy.detectors import DETECTORS

DOCS = Path(__file__).parents[2] / "docs" / "pipeline.md"


def docs_example() -> str:
    """The full example of docs/pipeline.md, so the reference cannot drift from the code."""
    text = DOCS.read_text()
    start = text.index("## A full example")
    return text[start:].split("```yaml\n", 1)[1].split("```", 1)[0]


def problems(text: str, tmp_path: Path | None = None) -> list[tuple[int | None, str, str]]:
    return [(p.line, p.path, p.message) for p in check_config(text, "ak.yaml", base=tmp_path)]


def test_exported_members() -> None:
    module = auditkeep.pipeline.config
    for name in module.__all__:
        assert hasattr(module, name), name


class TestGoodFiles:
    def test_the_documented_example_is_valid(self, tmp_path: Path) -> None:
        (tmp_path / "tls").mkdir()
        (tmp_path / "tls" / "syslog.pem").write_text("cert")
        (tmp_path / "tls" / "syslog.key").write_text("key")
        cfg, found = read_config(docs_example(), "auditkeep.yaml", base=tmp_path)
        assert found == []
        assert cfg is not None
        assert cfg.origin_prefix == "audit.example.com"
        assert cfg.pipeline == (
            NormaliseConfig(),
            EnrichConfig({"source.environment": "prod", "source.region": "eu-west-1"},
                         user_agent=True, source_metadata=True),
            SampleConfig(0.1, ("k8s.*.get", "k8s.*.list", "k8s.*.watch")),
        )
        assert cfg.tenants["acme"] == TenantConfig(
            (EnrichConfig({"metadata.customer_tier": "gold"}),), "global", "flag")
        assert cfg.tenants["audit-only"] == TenantConfig(
            (ValidateConfig(), NormaliseConfig()), "none", None)
        assert cfg.stage_count == 6
        s = cfg.sources
        assert s.k8s.stages == {"ResponseComplete", "Panic"}
        assert s.k8s.metadata == {"cluster": "prod-eu-1"}
        assert s.cloudtrail.enabled and s.otlp.enabled and not s.gcp.enabled
        assert s.syslog.enabled and s.syslog.tenant == "infra"
        assert s.syslog.tcp == ("127.0.0.1", 5514) and s.syslog.udp == ("127.0.0.1", 5514)
        assert s.syslog.tls_cert == tmp_path / "tls" / "syslog.pem"
        (github,) = s.generic
        assert (github.name, github.path, github.source) == (
            "github", "/v1/sources/generic/github", "generic.github")
        event = github.mapping()({"delivery_id": "d-1", "action": "opened",
                                  "sender": {"login": "octocat"},
                                  "created_at": "2024-05-01T10:00:00Z",
                                  "repository": {"full_name": "o/r"}})
        assert event["actor"] == {"id": "octocat", "type": "user"}

    def test_an_empty_file_is_every_default(self) -> None:
        for text in ("", "# nothing here\n", "{}"):
            assert parse_config(text) == ServerConfig()
        cfg = ServerConfig()
        assert cfg.sources == SourcesConfig()
        assert cfg.sources.k8s.enabled and not cfg.sources.syslog.enabled
        assert cfg.pipeline_for("acme").stages == ()
        assert cfg.schema_violations_for("acme") == "reject"

    def test_tenants_extend_or_replace_the_global_stages(self) -> None:
        cfg = parse_config("""
pipeline: [normalise, {sample: {rate: 0.5}}]
schema_violations: flag
tenants:
  acme: {pipeline: [validate]}
  beta: {pipeline: [validate], extends: none, schema_violations: reject}
  gamma: {}
""")
        assert cfg.pipeline_for("acme").kinds == ["normalise", "sample", "validate"]
        assert cfg.pipeline_for("beta").kinds == ["validate"]
        assert cfg.pipeline_for("gamma").kinds == ["normalise", "sample"]
        assert cfg.pipeline_for("not-listed").kinds == ["normalise", "sample"]
        assert cfg.schema_violations_for("acme") == "flag"
        assert cfg.schema_violations_for("beta") == "reject"
        assert cfg.stage_count == 4

    def test_stage_spellings(self) -> None:
        cfg = parse_config("pipeline: [normalize, {normalise: null}, {validate: {}}, "
                           "{normalise: {email: lower, action: lower, ip: false}}]")
        assert cfg.pipeline == (NormaliseConfig(), NormaliseConfig(), ValidateConfig(),
                                NormaliseConfig(email="lower", action="lower", ip=False))

    def test_the_built_pipeline_carries_the_sources_metadata(self) -> None:
        cfg = parse_config("""
sources:
  k8s: {metadata: {cluster: eu-1, shard: 3}}
pipeline:
  - enrich: {source_metadata: true}
  - sample: {rate: 0, actions: ["k8s.*.get"], reason: k8s-reads}
""")
        pipeline = cfg.pipeline_for("acme", "k8s")
        event = {"action": "k8s.pods.get", "actor": {"id": "a", "type": "user"},
                 "outcome": "success", "id": "e1"}
        assert pipeline.process(event) == Drop("k8s-reads")
        assert event["metadata"] == {"ingest": {"source": "k8s", "cluster": "eu-1",
                                                "shard": 3}}
        out = cfg.pipeline_for("acme")([{"action": "x.y", "id": "e2"}])
        assert out.events[0]["metadata"] == {"ingest": {"source": "api"}}

    def test_syslog_shorthands_and_ipv6(self) -> None:
        cfg = parse_config("sources: {syslog: {udp: '[::1]:514'}, otlp: false}")
        assert cfg.sources.syslog.enabled and cfg.sources.syslog.udp == ("::1", 514)
        assert cfg.sources.syslog.tcp is None and not cfg.sources.otlp.enabled
        assert not parse_config("sources: {syslog: false}").sources.syslog.enabled


class TestEveryProblemAtOnce:
    MISTAKES = """\
server: {origin_prefix: "audit example"}
sources:
  k8s: {stages: [ResponseComplete, Panik]}
  cloudtrial: {enabled: true}
  syslog: {tcp: "localhost"}
  generic:
    - name: github
      map: {action: /action, actor.id: /sender/login, outcome: {const: success}}
    - name: github
      map: {action: /a, actor.id: /b, actor.type: {const: user}, outcome: x}
pipeline:
  - normalise: {email: upper}
  - enrich: {static: {source.regon: eu}}
  - sample: {rate: 0.1, actions: ["k8s .list"]}
  - redact: {detectors: [tarot]}
tenants:
  acme:
    pipeline:
      - validate
      - normalise
      - sample: {rate: 1.5}
    extends: parent
  Bad_Name: {}
"""

    def test_a_file_with_many_mistakes_reports_all_of_them_with_paths(self) -> None:
        assert problems(self.MISTAKES) == [
            (1, "server.origin_prefix", "expected printable ASCII without spaces (it starts "
                                        "checkpoint origin lines), got 'audit example'"),
            (3, "sources.k8s.stages[1]", "expected one of RequestReceived, ResponseStarted, "
                                         "ResponseComplete, Panic, got 'Panik'"),
            (4, "sources.cloudtrial",
             "unknown key (expected one of k8s, cloudtrail, gcp, otlp, syslog, generic)"),
            (5, "sources.syslog.tcp", "expected HOST:PORT (IPv6 as [::1]:514), got "
                                      "'localhost'"),
            (8, "sources.generic[0].map", "missing actor.type (required by schema v1; use "
                                          "{const: ...} for a fixed value)"),
            (9, "sources.generic[1].name", "'github' is already the name of generic[0]"),
            (10, "sources.generic[1].map.outcome",
             'expected a JSON pointer (RFC 6901: "" or "/a/b", ~0 for ~ and ~1 for /), '
             "got 'x'"),
            (12, "pipeline[0].normalise.email", "expected one of domain, lower, keep, got "
                                                "'upper'"),
            (13, 'pipeline[1].enrich.static["source.regon"]',
             "expected source.<service|version|host|region|environment> or metadata.<key>, "
             "got 'source.regon'"),
            (14, "pipeline[2].sample.actions[0]",
             "expected an action pattern such as k8s.*.get, got 'k8s .list'"),
            (15, "pipeline[3].redact.detectors[0]",
             f"unknown detector 'tarot' (expected one of {', '.join(DETECTORS)})"),
            (21, "tenants.acme.pipeline[2].sample.rate",
             "expected a number from 0 to 1, got 1.5"),
            (22, "tenants.acme.extends", "expected one of global, none, got 'parent'"),
            (23, "tenants.Bad_Name",
             "not a tenant name (1 to 63 of a-z, 0-9 and -), got 'Bad_Name'"),
        ]

    def test_load_config_raises_one_error_holding_every_problem(self, tmp_path: Path) -> None:
        path = tmp_path / "auditkeep.yaml"
        path.write_text(self.MISTAKES)
        with pytest.raises(ConfigError) as info:
            load_config(path)
        err = info.value
        assert err.detail.startswith(f"{path}: 14 problems: {path}:1:")
        assert f"{path}:21:" in err.detail
        assert "tenants.acme.pipeline[2].sample.rate: expected a number from 0 to 1, got 1.5" \
            in err.detail
        pointers = [p.pointer for p in err.problems]
        assert "/tenants/acme/pipeline/2/sample/rate" in pointers
        assert "/sources/generic/1/map/outcome" in pointers
        assert len(pointers) == 14

    def test_the_one_line_form(self) -> None:
        (p,) = check_config("pipeline: [{sample: {rate: 2}}]", "ak.yaml")
        assert str(p) == "ak.yaml:1:22: pipeline[0].sample.rate: expected a number from 0 " \
                         "to 1, got 2"
        assert p == ConfigProblem("ak.yaml", "pipeline[0].sample.rate",
                                  "expected a number from 0 to 1, got 2", 1, 22,
                                  "/pipeline/0/sample/rate")


class TestYaml:
    def test_a_syntax_error_names_its_line_and_column(self) -> None:
        (p,) = check_config("pipeline:\n  - normalise: {email: lower\n  - validate: [\n"
                            "server: {}\n", "ak.yaml")
        assert p.path == "(top)"
        assert p.message == ("not valid YAML: expected ',' or '}', but got ':' "
                             "(while parsing a flow mapping started at line 2, column 16)")
        assert (p.line, p.column) == (3, 13)
        assert re.match(r"ak\.yaml:3:13: \(top\): not valid YAML: ", str(p))

    def test_a_tab_indent_is_a_syntax_error_too(self) -> None:
        (p,) = check_config("pipeline:\n\t- validate\n", "ak.yaml")
        assert p.line == 2 and "not valid YAML" in p.message

    def test_duplicate_keys_are_reported_where_the_second_one_is(self) -> None:
        assert problems("tenants:\n  acme: {}\n  beta: {}\n  acme: {extends: none}\n") == [
            (4, "tenants.acme", "duplicate key (only the last value would count)")]

    def test_more_than_one_document(self) -> None:
        (p,) = check_config("pipeline: []\n---\npipeline: []\n", "ak.yaml")
        assert p.line == 2 and "single document" in p.message

    def test_not_a_mapping(self) -> None:
        assert problems("- validate\n") == [(None, "(top)", "expected a mapping of settings, "
                                                            "got a list")]

    def test_a_file_that_cannot_be_read(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="cannot read"):
            load_config(tmp_path / "missing.yaml")
        (tmp_path / "latin1.yaml").write_bytes(b"server: {origin_prefix: caf\xe9}\n")
        with pytest.raises(ConfigError, match="not UTF-8"):
            load_config(tmp_path / "latin1.yaml")


class TestStageProblems:
    @pytest.mark.parametrize(("text", "expected"), [
        ("pipeline: validate", [(1, "pipeline", "expected a list of stages, got 'validate'")]),
        ("pipeline: [{validate: {}, normalise: {}}]",
         [(1, "pipeline[0]", "expected one stage as `- {name: {options}}` or `- name` (one of "
                             "validate, normalise, enrich, sample, redact), got a mapping "
                             "with 2 keys")]),
        ("pipeline: [{validate: {strict: true}}]",
         [(1, "pipeline[0].validate.strict", "unknown key (expected one of )")]),
        ("pipeline: [{normalise: [text]}]",
         [(1, "pipeline[0].normalise", "expected a mapping of normalise options, got a list")]),
        ("pipeline: [{normalise: {text: yes please}}]",
         [(1, "pipeline[0].normalise.text", "expected true or false, got 'yes please'")]),
        ("pipeline: [enrich]", [(1, "pipeline[0].enrich", "does nothing: give static, user_agent: "
                                                   "true or source_metadata: true")]),
        ("pipeline: [{enrich: {user_agent: 1}}]",
         [(1, "pipeline[0].enrich.user_agent", "expected true or false, got 1")]),
        ("pipeline: [{enrich: {static: {source.region: ''}}}]",
         [(1, 'pipeline[0].enrich.static["source.region"]',
           "expected a non-empty string of at most 256 characters, got ''")]),
        ("pipeline: [{enrich: {static: {metadata.a: 1, metadata.a.b: 2}}}]",
         [(1, 'pipeline[0].enrich.static["metadata.a.b"]',
           "conflicts with 'metadata.a', which sets a value there")]),
        ("pipeline: [{enrich: {static: {metadata.team: [a]}}}]",
         [(1, 'pipeline[0].enrich.static["metadata.team"]',
           "expected a string, number or true/false, got a list")]),
        ("pipeline: [sample]", [(1, "pipeline[0].sample.rate", "required: a number from 0 "
                                                               "to 1")]),
        ("pipeline: [{sample: {rate: true}}]",
         [(1, "pipeline[0].sample.rate", "expected a number from 0 to 1, got True")]),
        ("pipeline: [{sample: {rate: 0.5, actions: []}}]",
         [(1, "pipeline[0].sample.actions",
           "expected a non-empty list of action patterns, got a list")]),
        ("pipeline: [{sample: {rate: 0.5, reason: Too Many}}]",
         [(1, "pipeline[0].sample.reason", "expected 1 to 64 of a-z, 0-9 and _.:- (it is a "
                                           "metric label), got 'Too Many'")]),
        ("pipeline: [{3: {}}]",
         [(1, "pipeline[0]", "unknown stage 3 (expected one of validate, normalise, enrich, "
                             "sample, redact)")]),
    ])
    def test_stage_options_are_checked(self, text: str,
                                       expected: list[tuple[int, str, str]]) -> None:
        assert problems(text) == expected


class TestSourceProblems:
    def test_syslog(self, tmp_path: Path) -> None:
        (tmp_path / "cert.pem").write_text("x")
        assert problems("""\
sources:
  syslog:
    enabled: true
    udp: "127.0.0.1:99999"
    tls: {cert: cert.pem}
    tenant: Infra
""", tmp_path) == [
            (4, "sources.syslog.udp", "expected HOST:PORT (IPv6 as [::1]:514), got "
                                      "'127.0.0.1:99999'"),
            (5, "sources.syslog.tls.key", "required"),
            (5, "sources.syslog.tls", "TLS is for the TCP listener: give tcp too"),
            (6, "sources.syslog.tenant",
             "not a tenant name (1 to 63 of a-z, 0-9 and -), got 'Infra'"),
        ]

    def test_syslog_on_needs_an_address_and_tls_files_must_exist(self, tmp_path: Path) -> None:
        assert problems("sources: {syslog: true}") == [
            (1, "sources.syslog", "enabled, but neither tcp nor udp gives an address to "
                                  "listen on")]
        found = problems("sources: {syslog: {tcp: ':6514', tls: {cert: a.pem, key: a.key}}}",
                         tmp_path)
        assert found == [
            (1, "sources.syslog.tls.cert", f"no such file: {tmp_path / 'a.pem'}"),
            (1, "sources.syslog.tls.key", f"no such file: {tmp_path / 'a.key'}")]

    def test_k8s_and_metadata(self) -> None:
        assert problems("""\
sources:
  k8s: {stages: some, metadata: {source: x, cluster: [a], ok: 1}}
  gcp: {enabled: maybe}
""") == [
            (2, "sources.k8s.stages", "expected a list of stages or 'all', got 'some'"),
            (2, "sources.k8s.metadata.source",
             "reserved: metadata.ingest.source is the source's name"),
            (2, "sources.k8s.metadata.cluster",
             "expected a string, number or true/false, got a list"),
            (3, "sources.gcp.enabled", "expected true or false, got 'maybe'"),
        ]
        assert parse_config("sources: {k8s: {stages: all}}").sources.k8s.stages is None

    def test_generic_sources(self) -> None:
        good = "{action: /a, actor.id: /b, actor.type: {const: user}, outcome: {const: success}}"
        assert problems(f"""\
sources:
  generic:
    - name: GitHub
      map: {good}
    - name: shop
      map: {good}
    - name: shop2
      path: /v1/sources/generic/shop
      map: {good}
    - name: other
      path: /v1/events
      map: {good}
    - name: stripe
      map: {{action: /type, resource.id: /data/id, actor: {{const: {{id: s, type: service}}}},
             outcome: {{pointer: /o, optional: maybe}}}}
    - just-a-name
""") == [
            (3, "sources.generic[0].name", "expected 1 to 63 of a-z, 0-9, _ and -, starting "
                                           "with a letter or digit, got 'GitHub'"),
            (8, "sources.generic[2].path",
             "/v1/sources/generic/shop is already served by generic[1]"),
            (11, "sources.generic[3].path", "expected /v1/sources/generic/<name> (one path "
                                            "segment), got '/v1/events'"),
            (14, "sources.generic[4].map", "missing resource.type (required by schema v1; use "
                                           "{const: ...} for a fixed value)"),
            (15, "sources.generic[4].map.outcome.optional",
             "expected true or false, got 'maybe'"),
            (16, "sources.generic[5]", "expected a mapping with name, path and map, got "
                                       "'just-a-name'"),
        ]


def test_render_path() -> None:
    assert render_path(()) == "(top)"
    assert render_path(("tenants", "acme", "pipeline", 2, "sample", "rate")) == \
        "tenants.acme.pipeline[2].sample.rate"
    assert render_path(("map", "actor.id")) == 'map["actor.id"]'
