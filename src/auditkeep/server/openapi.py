"""The OpenAPI 3.1 document served at /openapi.json (kept beside the routes it describes)."""

from __future__ import annotations

from typing import Any

from auditkeep import __version__
from auditkeep.server.openapi_archive import ARCHIVE_PATHS
from auditkeep.server.openapi_detect import DETECT_PATHS, PRIVACY_PATHS
from auditkeep.server.openapi_holds import HOLD_PATHS
from auditkeep.server.openapi_parts import _B64, _ERRORS, _PROBLEM, _TENANT, _json, _q
from auditkeep.server.openapi_query import QUERY_PATHS
from auditkeep.server.openapi_retention import RETENTION_PATHS

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "auditkeep", "version": __version__,
             "description": "Tamper-evident audit log. Every /v1 call needs "
                            "`Authorization: Bearer <token>`."},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Problem": {"type": "object", "required": ["type", "title", "status"], "properties": {
                "type": {"type": "string"}, "title": {"type": "string"},
                "status": {"type": "integer"}, "detail": {"type": "string"},
                "instance": {"type": "string"},
                "errors": {"type": "array", "items": {"type": "object", "properties": {
                    "pointer": {"type": "string"}, "detail": {"type": "string"},
                    "index": {"type": "integer"}, "expected": {"type": "string"},
                    "actual": {"type": "string"}}}}}},
            "Principal": {"type": "object", "required": ["id", "type"], "properties": {
                "id": {"type": "string"},
                "type": {"enum": ["user", "service", "system", "anonymous"]}}},
            "Resource": {"type": "object", "required": ["type", "id"], "additionalProperties":
                         False, "properties": {"type": {"type": "string"},
                                               "id": {"type": "string"},
                                               "name": {"type": "string"}}},
            "Event": {
                "type": "object", "additionalProperties": False,
                "required": ["action", "actor", "outcome"],
                "properties": {
                    "action": {"type": "string", "examples": ["orders.delete"]},
                    "actor": {"type": "object", "required": ["id", "type"], "properties": {
                        "id": {"type": "string"},
                        "type": {"enum": ["user", "service", "system", "anonymous"]},
                        "name": {"type": "string"}, "email": {"type": "string"},
                        "ip": {"type": "string"}, "user_agent": {"type": "string"},
                        "session_id": {"type": "string"},
                        "impersonator": {"$ref": "#/components/schemas/Principal"}}},
                    "outcome": {"enum": ["success", "failure", "denied", "unknown"]},
                    "id": {"type": "string", "pattern": r"^[A-Za-z0-9._:-]{1,128}$"},
                    "time": {"type": "string", "format": "date-time"},
                    "category": {"enum": ["admin", "auth", "data_access", "data_change",
                                          "config", "system", "policy"]},
                    "resource": {"$ref": "#/components/schemas/Resource"},
                    "targets": {"type": "array", "maxItems": 20,
                                "items": {"$ref": "#/components/schemas/Resource"}},
                    "reason": {"type": "string"},
                    "severity": {"enum": ["info", "notice", "warning", "critical"]},
                    "source": {"type": "object", "properties": {
                        k: {"type": "string"} for k in
                        ("service", "version", "host", "region", "environment")}},
                    "trace_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                    "span_id": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
                    "request_id": {"type": "string"},
                    "tenant": {"type": "string", "pattern": "^[a-z0-9-]{1,63}$"},
                    "changes": {"type": "array", "items": {"type": "object",
                                "required": ["field"], "properties": {
                                    "field": {"type": "string"}, "before": {}, "after": {}}}},
                    "metadata": {"type": "object"},
                    "redactions": {"type": "array", "maxItems": 256, "items": {
                        "type": "object", "required": ["path", "rule", "action"],
                        "properties": {
                            "path": {"type": "string", "pattern": "^(/[^/]*)+$"},
                            "rule": {"type": "string"},
                            "action": {"enum": ["drop", "mask", "hash", "commit",
                                                "redact"]}}}},
                },
            },
            "Receipt": {"type": "object", "required": ["id", "seq", "leaf_hash"], "properties": {
                "id": {"type": "string"}, "seq": {"type": "integer"}, "leaf_hash": _B64,
                "duplicate": {"type": "boolean"}}},
            "IngestResult": {"type": "object", "properties": {
                "tenant": {"type": "string"},
                "receipts": {"type": "array", "items": {"$ref": "#/components/schemas/Receipt"}},
                "checkpoint": {"type": "string", "description": "C2SP signed checkpoint"}}},
            "Record": {"type": "object", "description": "a stored event: schema v1 fields plus "
                       "seq, received, submitter, tenant, v"},
            "SearchResult": {"type": "object", "properties": {
                "events": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}},
                "next_cursor": {"type": ["string", "null"]},
                "from_archive": {"type": "array", "items": {"type": "integer"},
                                 "description": "with include=archive: the seqs of the "
                                                "events read from the cold archive"}}},
            "InclusionProof": {"type": "object", "properties": {
                "seq": {"type": "integer"}, "tree_size": {"type": "integer"},
                "leaf_hash": _B64, "hashes": {"type": "array", "items": _B64}}},
            "ConsistencyProof": {"type": "object", "properties": {
                "from": {"type": "integer"}, "to": {"type": "integer"},
                "hashes": {"type": "array", "items": _B64}}},
            "Keys": {"type": "object", "properties": {"keys": {"type": "array", "items": {
                "type": "object", "properties": {
                    "name": {"type": "string"}, "key_id": {"type": "string"},
                    "verifier": {"type": "string"}, "active": {"type": "boolean"}}}}}},
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/events": {
            "post": {
                "summary": "Append events (one object, an array, or NDJSON); atomic, durable",
                "parameters": [_q("tenant", "admin tokens only: the tenant to write to")],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"oneOf": [
                        {"$ref": "#/components/schemas/Event"},
                        {"type": "array", "maxItems": 10000,
                         "items": {"$ref": "#/components/schemas/Event"}}]}},
                    "application/x-ndjson": {"schema": {"type": "string"}}}},
                "responses": {"201": {"description": "committed", **_json("IngestResult")},
                              "200": {"description": "all duplicates", **_json("IngestResult")},
                              "409": _PROBLEM, "413": _PROBLEM, "503": _PROBLEM, **_ERRORS},
            },
            "get": {
                "summary": "Search events, newest first",
                "parameters": [
                    _q("actor", "actor.id"), _q("action", "exact, or `prefix.*`"),
                    _q("resource_type", "resource.type"), _q("resource_id", "resource.id"),
                    _q("outcome", "outcome"), _q("category", "category"),
                    _q("source_service", "source.service"),
                    _q("since", "RFC 3339 or 15m/24h/7d"), _q("until", "RFC 3339 or 15m/24h/7d"),
                    _q("q", "full-text terms (all must match)"),
                    _q("limit", "1..1000", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _q("cursor", "from next_cursor"), _q("tenant", "admin tokens only")],
                "responses": {"200": {"description": "matches", **_json("SearchResult")},
                              **_ERRORS},
            },
        },
        "/v1/events/{id}": {"get": {
            "summary": "One event with its receipt and inclusion proof",
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "string"}}, _q("tenant", "admin tokens only")],
            "responses": {"200": {"description": "record, receipt, proof, checkpoint"},
                          **_ERRORS}}},
        "/v1/events/{id}/raw": {"get": {
            "summary": "The producer's original object of a source event, byte-exact",
            "description": "Its SHA-256 is the record's raw.sha256; the format is in the "
                           "X-Auditkeep-Raw-Format header.",
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "string"}}, _q("tenant", "admin tokens only")],
            "responses": {"200": {"description": "the raw object as received"}, **_ERRORS}}},
        "/v1/sources/k8s": {"post": {
            "summary": "Kubernetes audit webhook: an audit.k8s.io/v1 EventList",
            "description": "Mapped onto schema v1 (docs/sources.md); only ResponseComplete "
                           "and Panic stages by default; idempotent on auditID + stage.",
            "parameters": [_q("tenant", "admin tokens only")],
            "requestBody": {"required": True, "content": {"application/json": {}}},
            "responses": {"201": {"description": "receipts, checkpoint, filtered count",
                                  **_json("IngestResult")},
                          "200": {"description": "nothing new (all filtered or duplicates)"},
                          **_ERRORS}}},
        "/v1/sources/cloudtrail": {"post": {
            "summary": "AWS CloudTrail: a log file's body, {\"Records\": [...]}, gzip or not",
            "parameters": [_q("tenant", "admin tokens only")],
            "requestBody": {"required": True, "content": {"application/json": {}}},
            "responses": {"201": {"description": "receipts", **_json("IngestResult")},
                          "200": {"description": "nothing new"}, **_ERRORS}}},
        "/v1/sources/gcp": {"post": {
            "summary": "Google Cloud audit LogEntries: a Pub/Sub push body, JSON lines, "
                       "a JSON array or one entry",
            "parameters": [_q("tenant", "admin tokens only")],
            "requestBody": {"required": True, "content": {"application/json": {}}},
            "responses": {"201": {"description": "receipts", **_json("IngestResult")},
                          "200": {"description": "nothing new"}, **_ERRORS}}},
        "/v1/otlp/v1/logs": {"post": {
            "summary": "OpenTelemetry logs (OTLP/HTTP, protobuf or JSON): records with "
                       "audit.action become events (docs/otlp.md)",
            "parameters": [_q("tenant", "admin tokens only")],
            "requestBody": {"required": True, "content": {"application/x-protobuf": {},
                                                          "application/json": {}}},
            "responses": {"200": {"description": "ExportLogsServiceResponse"}, **_ERRORS}}},
        "/v1/schemas/{action}": {
            "get": {"summary": "An action's JSON Schema (latest, or ?version=)",
                    "parameters": [{"name": "action", "in": "path", "required": True,
                                    "schema": {"type": "string"}}, _q("tenant", "admin only"),
                                   _q("version", "1-based", {"type": "integer"})],
                    "responses": {"200": {"description": "tenant, action, version, schema"},
                                  **_ERRORS}},
            "put": {"summary": "Register a new version of an action's JSON Schema (admin)",
                    "description": "Applied to {metadata, resource} of each event with "
                                   "this action; violations are rejected or flagged as "
                                   "the tenant is configured (schema_violations).",
                    "parameters": [{"name": "action", "in": "path", "required": True,
                                    "schema": {"type": "string"}}, _q("tenant", "admin only")],
                    "requestBody": {"required": True, "content": {"application/json": {}}},
                    "responses": {"201": {"description": "tenant, action, version"},
                                  **_ERRORS}}},
        "/v1/logs/{tenant}/checkpoint": {"get": {
            "summary": "Latest signed checkpoint (C2SP tlog-checkpoint note) with the "
                       "witness cosignature lines stored for it (docs/witnesses.md)",
            "parameters": [_TENANT,
                           _q("size", "the checkpoint of this tree size instead",
                              {"type": "integer", "minimum": 1}),
                           _q("witnessed", "true: the largest checkpoint witnesses cosigned",
                              {"type": "boolean"})],
            "responses": {"200": {"description": "note", "content": {"text/plain": {}}},
                          **_ERRORS}}},
        "/v1/logs/{tenant}/proof/inclusion": {"get": {
            "summary": "RFC 6962 inclusion proof",
            "parameters": [_TENANT, _q("seq", "0-based", {"type": "integer"}, True),
                           _q("size", "tree size (default: current)", {"type": "integer"})],
            "responses": {"200": {"description": "proof", **_json("InclusionProof")},
                          **_ERRORS}}},
        "/v1/logs/{tenant}/proof/consistency": {"get": {
            "summary": "RFC 6962 consistency proof",
            "parameters": [_TENANT, _q("from", "older size", {"type": "integer"}, True),
                           _q("to", "newer size (default: current)", {"type": "integer"})],
            "responses": {"200": {"description": "proof", **_json("ConsistencyProof")},
                          **_ERRORS}}},
        "/v1/logs/{tenant}/entries/{seq}": {"get": {
            "summary": "One stored record, or its exact canonical bytes",
            "parameters": [_TENANT, {"name": "seq", "in": "path", "required": True,
                                     "schema": {"type": "integer"}},
                           _q("format", "record (default) or canonical")],
            "responses": {"200": {"description": "record or canonical bytes"}, **_ERRORS,
                          "410": {**_ERRORS["404"], "description": "purged by retention "
                                  "(problem type `purged`, naming the retention record); "
                                  "its leaf and proofs stay"}}}},
        "/v1/keys": {"get": {"summary": "Verifier keys, including rotated-out ones",
                             "responses": {"200": {"description": "keys", **_json("Keys")},
                                           **_ERRORS}}},
        "/v1/status": {"get": {"summary": "Log sizes, queue depth, indexer lag",
                               "responses": {"200": {"description": "status"}, **_ERRORS}}},
        "/v1/slos": {"get": {"summary": "SLOs: burn rate by window, error budget left, "
                                        "burn alerts firing (docs/slos.md)",
                             "responses": {"200": {"description": "the SLOs"}, **_ERRORS}}},
        "/healthz": {"get": {"security": [], "summary": "Liveness",
                             "responses": {"200": {"description": "ok"}}}},
        "/readyz": {"get": {"security": [], "summary": "Readiness: storage, index lag, bus",
                            "responses": {"200": {"description": "ready, with each check"},
                                          "503": {"description": "not ready: problem+json "
                                                  "naming the failing checks, Retry-After"}}}},
        "/metrics": {"get": {"security": [], "summary": "Prometheus metrics",
                             "responses": {"200": {"description": "text exposition"}}}},
        **QUERY_PATHS,
        **DETECT_PATHS,
        **PRIVACY_PATHS,
        **HOLD_PATHS,
        **ARCHIVE_PATHS,
        **RETENTION_PATHS,
    },
}
