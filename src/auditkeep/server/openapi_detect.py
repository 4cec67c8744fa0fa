"""OpenAPI paths of detection (alerts, deliveries, rules: docs/rules.md) and of privacy
(erasure, subject access: docs/privacy.md)."""

from __future__ import annotations

from typing import Any

from auditkeep.server.openapi_parts import _ERRORS, _q


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_TENANT_Q = _q("tenant", "admin only: another tenant")
_FILE = {"name": "file", "in": "path", "required": True,
         "schema": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.ya?ml$"}}

DETECT_PATHS: dict[str, Any] = {
    "/v1/alerts": {"get": {
        "summary": "Alerts, newest first (read or audit scope)",
        "parameters": [_TENANT_Q, _q("rule", "rule id"),
                       _q("level", "informational|low|medium|high|critical"),
                       _q("status", "open|acked"), _q("since", "created at or after"),
                       _q("until", "created before"), _q("cursor", "next_cursor of a page"),
                       _q("limit", "1-500 (default 50)", {"type": "integer"})],
        "responses": {"200": {"description": "alerts, next_cursor"}, **_ERRORS}}},
    "/v1/alerts/{id}": {"get": {
        "summary": "One alert with its event links and deliveries",
        "parameters": [_path("id"), _TENANT_Q],
        "responses": {"200": {"description": "alert"}, **_ERRORS}}},
    "/v1/alerts/{id}/ack": {"post": {
        "summary": "Acknowledge an alert (audit scope; recorded in the access log)",
        "parameters": [_path("id"), _TENANT_Q],
        "requestBody": {"required": False, "content": {"application/json": {}}},
        "responses": {"200": {"description": "alert"}, **_ERRORS}}},
    "/v1/deliveries": {"get": {
        "summary": "Alert deliveries; status=dead is the dead-letter list",
        "parameters": [_TENANT_Q, _q("status", "pending|delivered|dead"),
                       _q("alert", "alert id"), _q("limit", "1-1000", {"type": "integer"})],
        "responses": {"200": {"description": "deliveries"}, **_ERRORS}}},
    "/v1/deliveries/{id}/retry": {"post": {
        "summary": "Queue a dead delivery again, now (audit scope)",
        "parameters": [_path("id"), _TENANT_Q],
        "responses": {"200": {"description": "delivery"}, **_ERRORS}}},
    "/v1/rules": {"get": {
        "summary": "The detection rules in force, and the last reload error",
        "responses": {"200": {"description": "rules, error, generation"}, **_ERRORS}}},
    "/v1/rules/{file}": {
        "get": {"summary": "One rule file as YAML", "parameters": [_FILE],
                "responses": {"200": {"description": "YAML",
                                      "content": {"application/yaml": {}}}, **_ERRORS}},
        "put": {"summary": "Write a rule file, checked with all the others first (admin)",
                "parameters": [_FILE],
                "requestBody": {"required": True, "content": {"application/yaml": {}}},
                "responses": {"200": {"description": "file, rules"}, **_ERRORS}},
        "delete": {"summary": "Remove a rule file (admin)", "parameters": [_FILE],
                   "responses": {"204": {"description": "removed"}, **_ERRORS}}},
}

PRIVACY_PATHS: dict[str, Any] = {
    "/v1/erasure": {"post": {
        "summary": "Erase a data subject's personal values and raw objects (privacy scope)",
        "parameters": [_TENANT_Q],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["subject", "legal_basis"],
            "additionalProperties": False, "properties": {
                "subject": {"type": "string", "minLength": 1, "maxLength": 1024},
                "legal_basis": {"type": "string", "minLength": 1, "maxLength": 1024}}}}}},
        "responses": {"200": {"description": "tenant, subject (pseudonym), events, values, "
                                             "raws, record_id, record_seq"}, **_ERRORS}}},
    "/v1/subjects/{subject}/events": {"get": {
        "summary": "Everything held about a data subject (privacy scope; access-logged)",
        "parameters": [_path("subject"), _TENANT_Q,
                       _q("limit", "1-1000 (default 100)", {"type": "integer"}),
                       _q("after", "next_after of the previous page", {"type": "integer"})],
        "responses": {"200": {"description": "tenant, subject, total, events, next_after"},
                      **_ERRORS}}},
}
