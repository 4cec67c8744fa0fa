"""The `redact` pipeline stage in the configuration file: built per tenant with the
tenant's pseudonym key; every mistake reported with its path."""

from __future__ import annotations

from auditkeep.pipeline.config import RedactConfig, check_config, parse_config
from auditkeep.privacy.detectors import DEFAULT_DETECTORS, DETECTORS
from auditkeep.privacy.policy import RedactRule
from auditkeep.privacy.pseudonyms import pseudonym, tenant_key

GOOD = """
tenants:
  acme:
    pipeline:
      - redact:
          fields:
            - {path: metadata.card, action: mask}
            - {path: metadata.customer.email, action: hash}
            - {path: /metadata/ssn, action: commit}
            - {path: metadata.debug, action: drop}
          detectors: all
          actions: {email: hash, ipv4: mask}
          raw: false
  beta:
    pipeline: [redact]
"""


def problems(text: str) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in check_config(text, "ak.yaml")]


def test_a_good_file_builds_per_tenant_policies() -> None:
    cfg = parse_config(GOOD)
    acme = cfg.tenants["acme"].pipeline[0]
    assert acme == RedactConfig(
        (RedactRule("metadata.card", "mask", 0, 4), RedactRule("metadata.customer.email", "hash"),
         RedactRule("/metadata/ssn", "commit"), RedactRule("metadata.debug", "drop")),
        tuple(DETECTORS), {"email": "hash", "ipv4": "mask"}, True, False)
    assert cfg.tenants["beta"].pipeline[0] == RedactConfig()
    assert RedactConfig().detectors == DEFAULT_DETECTORS
    secret = b"s" * 32
    pipe = cfg.pipeline_for("acme", secret=secret)
    assert pipe.kinds == ["redact"]
    out = pipe([{"action": "a.b", "metadata": {"customer": {"email": "x@y.io"}}}]).events[0]
    assert out["metadata"]["customer"]["email"] == pseudonym(tenant_key(secret, "acme"),
                                                             "x@y.io")
    other = cfg.pipeline_for("beta", secret=secret)([{"action": "a.b", "metadata": {
        "m": "x@y.io"}}]).events[0]
    assert other["metadata"]["m"] == "[REDACTED:email]"


def test_every_mistake_is_reported_with_its_path() -> None:
    found = problems("""
pipeline:
  - redact:
      fields:
        - {path: "", action: drop}
        - {path: metadata.x}
        - {path: metadata.y, action: shred}
        - {path: metadata.z, action: hash, keep_end: 2}
        - {path: "*.a", action: drop}
        - {path: metadata.w, action: mask, colour: red}
      detectors: [email, tarot]
      actions: {email: burn, nope: redact}
      secret: true
""")
    paths = [p for p, _ in found]
    assert "pipeline[0].redact.fields[0].path" in paths
    assert ("pipeline[0].redact.fields[1].action",
            "required: one of drop, mask, hash, commit") in found
    assert "pipeline[0].redact.fields[2].action" in paths
    assert any(p == "pipeline[0].redact.fields[3]" and "mask" in m for p, m in found)
    assert any(p == "pipeline[0].redact.fields[4].path" and "wildcard" in m for p, m in found)
    assert "pipeline[0].redact.fields[5].colour" in paths
    assert any(p == "pipeline[0].redact.detectors[1]" and "tarot" in m for p, m in found)
    assert "pipeline[0].redact.actions.email" in paths
    assert "pipeline[0].redact.actions.nope" in paths
    assert "pipeline[0].redact.secret" in paths
