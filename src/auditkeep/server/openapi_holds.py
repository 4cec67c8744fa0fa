"""OpenAPI paths of legal holds (docs/holds.md)."""

from __future__ import annotations

from typing import Any

from auditkeep.server.openapi_parts import _ERRORS, _PROBLEM, _q

_ID = {"name": "id", "in": "path", "required": True,
       "schema": {"type": "string", "pattern": r"^hold_[a-z2-7]{12}$"}}
_TENANT_Q = _q("tenant", "admin only: another tenant (listing: none means every tenant)")
_TIME = {"type": "string", "description": "RFC 3339 time with offset, or a date (UTC)"}
_REASON = {"type": "string", "minLength": 1, "maxLength": 1024}
_HOLD = ("id, tenant, query, reason, since, until, created, created_by, record_seq, "
         "active, released, released_by, release_seq")

HOLD_PATHS: dict[str, Any] = {
    "/v1/holds": {
        "get": {"summary": "Legal holds, oldest first (audit scope; not access-logged)",
                "parameters": [_TENANT_Q, _q("active", "true: unreleased only; false: "
                                                       "released only",
                                             {"type": "string", "enum": ["true", "false"]})],
                "responses": {"200": {"description": "holds: [" + _HOLD + "]"}, **_ERRORS}},
        "post": {"summary": "Create a legal hold: matching events are never purged until it "
                            "is released; recorded in the tenant's log (admin)",
                 "parameters": [_TENANT_Q],
                 "requestBody": {"required": True, "content": {"application/json": {
                     "schema": {"type": "object", "required": ["query", "reason"],
                                "additionalProperties": False, "properties": {
                                    "query": {"type": "string", "minLength": 1,
                                              "maxLength": 4096,
                                              "description": "search query language"},
                                    "reason": _REASON, "since": _TIME, "until": _TIME}}}}},
                 "responses": {"201": {"description": _HOLD}, **_ERRORS}}},
    "/v1/holds/{id}": {"get": {
        "summary": "One hold, and how many events match it in hot storage (audit scope; "
                   "the count is access-logged)",
        "parameters": [_ID, _TENANT_Q],
        "responses": {"200": {"description": _HOLD + ", matching, matching_capped"},
                      **_ERRORS}}},
    "/v1/holds/{id}/release": {"post": {
        "summary": "Release a hold; recorded in the tenant's log (admin)",
        "parameters": [_ID, _TENANT_Q],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["reason"], "additionalProperties": False,
            "properties": {"reason": _REASON}}}}},
        "responses": {"200": {"description": _HOLD}, "409": _PROBLEM, **_ERRORS}}},
}
