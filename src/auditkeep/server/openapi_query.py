"""OpenAPI paths of the investigation endpoints: query search, aggregations, context,
exports and saved searches."""

from __future__ import annotations

from typing import Any

from auditkeep.server.openapi_parts import _ERRORS, _PROBLEM, _q
from auditkeep.server.polls import POLL_PARAM, SESSION_PATTERN

_QUERY = [_q("query", "query language (docs/query.md); empty = everything"),
          _q("saved", "run this saved search (its query, since and until)"),
          _q("since", "RFC 3339, or 15m/24h/7d (also -15m)"),
          _q("until", "RFC 3339, or 15m/24h/7d (also -15m)"),
          _q("tenant", "admin tokens only; `T._access` for the access log")]
_POLL = _q(POLL_PARAM, "marks a poll of a live tail or dashboard refresh: a random id per "
          "polling session (not a secret). The session's polls of one minute are recorded "
          "in `_access` as one record with counts instead of one record each "
          "(docs/api.md#the-access-log)", {"type": "string", "pattern": SESSION_PATTERN})
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_NAME = {"name": "name", "in": "path", "required": True,
         "schema": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"}}
_RESULT = {"content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/SearchResult"}}}}
_TEXT = {"type": "string"}
_SAVED_BODY: dict[str, Any] = {
    "type": "object", "required": ["query"], "additionalProperties": False,
    "properties": {"query": _TEXT, "since": _TEXT, "until": _TEXT, "description": _TEXT,
                   "columns": {"type": "array", "items": _TEXT}}}

QUERY_PATHS: dict[str, Any] = {
    "/v1/search": {"get": {
        "summary": "Search with the query language, newest first",
        "description": "A syntax error is a 400 whose problem names the column and what "
                       "was expected there.",
        "parameters": [*_QUERY,
                       _q("limit", "1..1000", {"type": "integer", "minimum": 1, "maximum": 1000}),
                       _q("cursor", "from next_cursor"), _POLL,
                       _q("include", "archive: also purged events found in the cold "
                                     "archive, merged newest first (docs/archive.md)",
                          {"type": "string", "enum": ["archive"]})],
        "responses": {"200": {"description": "matches", **_RESULT}, **_ERRORS}}},
    "/v1/aggregate": {"get": {
        "summary": "Counts: total, grouped by one or two fields (top N), distinct, histogram",
        "parameters": [*_QUERY, _q("group_by", "one or two comma-separated fields"),
                       _q("top", "1..1000 groups (default 10)", {"type": "integer"}),
                       _q("distinct", "a field whose distinct values to count"),
                       _q("interval", "auto, 1m, 5m, 15m, 1h, 6h, 1d or 7d")],
        "responses": {"200": {"description": "{total, groups, histogram, distinct}"},
                      **_ERRORS}}},
    "/v1/events/{id}/context": {"get": {
        "summary": "The events before and after one event by the same actor, on the same "
                   "resource, or in the same trace or request",
        "parameters": [_ID, _q("by", "actor (default), resource, trace or request"),
                       _q("before", "0..100 (default 10)", {"type": "integer"}),
                       _q("after", "0..100 (default 10)", {"type": "integer"}),
                       _q("tenant", "admin tokens only")],
        "responses": {"200": {"description": "{event, by, before, after}"}, **_ERRORS}}},
    "/v1/export": {"get": {
        "summary": "Stream every match as NDJSON, CSV or Parquet, as stored or as "
                   "OCSF, ECS or CADF (docs/export.md)",
        "parameters": [*_QUERY, _q("format", "ndjson (default), csv or parquet"),
                       _q("mapping", "auditkeep (default), ocsf, ecs or cadf"),
                       _q("columns", "comma-separated dotted paths (csv, parquet)"),
                       _q("max_rows", "stop after this many rows", {"type": "integer"})],
        "responses": {"200": {"description": "the export, streamed", "content": {
            "application/x-ndjson": {}, "text/csv": {}, "application/vnd.apache.parquet": {}}},
            **_ERRORS}}},
    "/v1/evidence": {"get": {
        "summary": "An evidence bundle (zip) of every event a query selects, for auditors: "
                   "canonical entries, a C2SP tlog-proof each, the cosigned checkpoint, "
                   "keys, raw originals, manifest and README (docs/evidence.md)",
        "description": "Needs scope audit (or admin). All of the selection or nothing: a "
                       "query selecting more than `limit` events is a 400 naming "
                       "/query/limit. Recorded in the tenant's `_access` log before it is "
                       "answered. Verify with tools/verify_evidence.py.",
        "parameters": [_QUERY[0], *_QUERY[2:],
                       _q("limit", "most events the bundle may hold, 1..10000 (default "
                          "10000)", {"type": "integer", "minimum": 1, "maximum": 10000})],
        "responses": {"200": {"description": "the bundle", "content": {
            "application/zip": {"schema": {"type": "string", "format": "binary"}}}},
            "409": {"description": "no signed checkpoint covers the selection yet (the "
                    "newest events were just committed); retry in a moment",
                    "content": {"application/problem+json": {}}},
            **_ERRORS}}},
    "/v1/dashboards/{name}": {"get": {
        "summary": "A dashboard's panels from live data: executive, oncall, debug or "
                   "operations (node-wide SLOs and SLIs: admin tokens only, else 403)",
        "parameters": [{"name": "name", "in": "path", "required": True,
                        "schema": {"enum": ["executive", "oncall", "debug", "operations"]}},
                       _q("tenant", "admin tokens only"), _POLL],
        "responses": {"200": {"description": "{name, tenant, generated, panels}"},
                      **_ERRORS}}},
    "/v1/saved-searches": {"get": {
        "summary": "The tenant's saved searches",
        "parameters": [_q("tenant", "admin tokens only")],
        "responses": {"200": {"description": "{saved: [...]}"}, **_ERRORS}}},
    "/v1/saved-searches/{name}": {
        "get": {"summary": "One saved search", "parameters": [_NAME, _q("tenant", "admin only")],
                "responses": {"200": {"description": "the saved search"}, **_ERRORS}},
        "put": {"summary": "Create or replace a saved search (its query must parse)",
                "parameters": [_NAME, _q("tenant", "admin tokens only")],
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": _SAVED_BODY}}},
                "responses": {"200": {"description": "saved"}, "400": _PROBLEM, **_ERRORS}},
        "delete": {"summary": "Delete a saved search",
                   "parameters": [_NAME, _q("tenant", "admin tokens only")],
                   "responses": {"204": {"description": "deleted"}, **_ERRORS}}},
}
