"""OpenAPI paths of retention (docs/retention.md)."""

from __future__ import annotations

from typing import Any

from auditkeep.server.openapi_parts import _ERRORS, _q

_DAYS = {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 36525},
                   {"type": "string", "pattern": r"^(\d{1,6}[dwy]?|forever|never)$"},
                   {"type": "null"}],
         "description": "days to keep: 400, \"400d\", \"12w\", \"3y\"; null or \"forever\": "
                        "kept forever"}
_CATEGORIES = ("admin", "auth", "data_access", "data_change", "config", "system", "policy")
_TENANT_ONE = _q("tenant", "the tenant (default: default)")
_TENANT_ALL = _q("tenant", "only this tenant (default: every tenant)")

RETENTION_PATHS: dict[str, Any] = {
    "/v1/retention": {
        "get": {"summary": "A tenant's effective retention policy, each part with its source "
                           "(api, config.tenant, config, builtin) (admin)",
                "parameters": [_TENANT_ONE],
                "responses": {"200": {"description": "tenant, default {days, source}, "
                                                     "categories {name: {days, source}}, "
                                                     "require_archive {value, source}, stored"},
                              **_ERRORS}},
        "put": {"summary": "Set a tenant's own retention policy; it replaces the one stored "
                           "before, and what it leaves unset comes from the file (admin)",
                "parameters": [_TENANT_ONE],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": False, "properties": {
                        "default": _DAYS,
                        "categories": {"type": "object", "additionalProperties": False,
                                       "properties": dict.fromkeys(_CATEGORIES, _DAYS)},
                        "require_archive": {"type": "boolean"}}}}}},
                "responses": {"200": {"description": "the effective policy, as GET"},
                              **_ERRORS}},
    },
    "/v1/retention/plan": {"get": {
        "summary": "Dry run: what a purge would remove now, by tenant, log and category, "
                   "with sizes, holds and archive waits (admin; access-logged)",
        "parameters": [_TENANT_ALL],
        "responses": {"200": {"description": "events, logs: [{tenant, log, events, "
                                             "entry_bytes, raw_bytes, personal_values, held, "
                                             "waiting_archive, range_count, categories: "
                                             "{name: {..., ranges}}}]"}, **_ERRORS}}},
    "/v1/retention/run": {"post": {
        "summary": "Run a purge now, until nothing is due; each purge is recorded in the log "
                   "it purged (admin)",
        "parameters": [_TENANT_ALL],
        "responses": {"200": {"description": "events, purges: [{tenant, log, events, "
                                             "entry_bytes, raw_bytes, personal_values, "
                                             "categories, first_seq, last_seq, record_id, "
                                             "record_seq}]"}, **_ERRORS}}},
}
