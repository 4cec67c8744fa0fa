"""OpenAPI paths of the cold archive (docs/archive.md)."""

from __future__ import annotations

from typing import Any

from auditkeep.server.openapi_parts import _ERRORS, _PROBLEM, _q

_RANGE = ("log, first, end, url, manifest_url, sha256 (hex, of the Parquet file), "
          "checkpoint_size, created")
_SEQ = {"type": "integer", "minimum": 0}

ARCHIVE_PATHS: dict[str, Any] = {
    "/v1/archive": {"get": {
        "summary": "The archived ranges of every log, by log and first seq (admin)",
        "parameters": [_q("tenant", "only this tenant's log and its _access log")],
        "responses": {"200": {"description": "url, range (entries per range), ranges: ["
                                             + _RANGE + "]"},
                      "409": _PROBLEM, **_ERRORS}}},
    "/v1/archive/run": {"post": {
        "summary": "Seal every range a persisted checkpoint covers that is not archived yet "
                   "(admin)",
        "description": "A range holding a purged entry cannot be archived; it is listed "
                       "under skipped with the reason. 409 when no archive is configured.",
        "responses": {"200": {"description": "sealed: [" + _RANGE + "], skipped: [log, "
                                             "first, end, reason]"},
                      "409": _PROBLEM, **_ERRORS}}},
    "/v1/archive/rehydrate": {"post": {
        "summary": "Put the archived entries of seqs [from, to) back where retention purged "
                   "them, each checked against the stored leaf first (admin; access-logged)",
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["tenant", "from", "to"],
            "additionalProperties": False,
            "properties": {"tenant": {"type": "string", "description": "T or T._access"},
                           "from": _SEQ, "to": _SEQ}}}}},
        "responses": {"200": {"description": "log, from, to, ranges, checked, restored, "
                                             "indexed"},
                      "409": _PROBLEM, **_ERRORS}}},
}
