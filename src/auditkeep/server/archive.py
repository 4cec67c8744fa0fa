"""The cold archive over HTTP (admin only): `GET /v1/archive` lists the sealed ranges,
`POST /v1/archive/run` seals what is due now, `POST /v1/archive/rehydrate` brings a
range back into hot storage (docs/archive.md)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from auditkeep.archive.job import ArchiveJob
from auditkeep.archive.reading import rehydrate
from auditkeep.archive.seal import archive_json
from auditkeep.datadir import Node
from auditkeep.errors import ConflictError, FieldProblem, ValidationError
from auditkeep.server import params
from auditkeep.server.context import caller, json_response, node, record_access
from auditkeep.server.reads import log_for

MAX_REHYDRATE = 1 << 20  # seqs one request may bring back


def archive_job(n: Node) -> ArchiveJob:
    job = n.options.get("archive")
    if not isinstance(job, ArchiveJob):
        raise ConflictError("this server has no cold archive configured (`archive:` in the "
                            "configuration file, docs/archive.md)")
    return job


async def list_archive(request: Request) -> Response:
    """`GET /v1/archive[?tenant=T]`: the archived ranges of every log (of one tenant)."""
    who = caller(request)
    who.require("admin")
    params.only(request, {"tenant"})
    n = node(request)
    job = archive_job(n)
    wanted = request.query_params.get("tenant")
    ranges = []
    for info in n.store.list_logs():
        if wanted and info.name not in (wanted, f"{wanted}._access"):
            continue
        ranges += [archive_json(r, info.name) for r in n.store.archives(info.id)]
    return json_response({"url": job.archiver.objects.url, "range": job.archiver.width,
                          "ranges": ranges})


async def run_archive(request: Request) -> Response:
    """`POST /v1/archive/run`: seal every range that is due now."""
    who = caller(request)
    who.require("admin")
    params.only(request, set())
    job = archive_job(node(request))
    report = await run_in_threadpool(job.archiver.run)
    return json_response(report.to_json())


async def post_rehydrate(request: Request) -> Response:
    """`POST /v1/archive/rehydrate` `{"tenant": "acme", "from": 0, "to": 65536}`:
    put the archived entries of seqs [from, to) back where retention purged them."""
    who = caller(request)
    who.require("admin")
    params.only(request, set())
    body = _body(await request.body())
    n = node(request)
    job = archive_job(n)
    log = log_for(who, body["tenant"])
    result = await run_in_threadpool(rehydrate, n.logs, job.archiver.objects, log,
                                     body["from"], body["to"], n.index)
    # The restored entries are readable again: who brought them back is on the record.
    await record_access(request, who, log, "archive.rehydrate",
                        {"from": body["from"], "to": body["to"]}, result.restored)
    return json_response(result.to_json())


def _body(raw: bytes) -> dict[str, Any]:
    try:
        obj = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"the body is not JSON: {exc}", problems=[
            FieldProblem("/body", "not JSON", "a JSON object", raw[:40].decode(errors="replace"))
        ]) from None
    if not isinstance(obj, dict):
        raise ValidationError("the body is not a JSON object", problems=[
            FieldProblem("/body", "not an object", "a JSON object", type(obj).__name__)])
    problems = [FieldProblem(f"/body/{k}", "unknown field", "tenant, from, to", k)
                for k in obj if k not in ("tenant", "from", "to")]
    tenant = obj.get("tenant")
    if tenant is not None and not isinstance(tenant, str):
        problems.append(FieldProblem("/body/tenant", "not a string", "a tenant name",
                                     repr(tenant)))
    for key in ("from", "to"):
        value = obj.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            problems.append(FieldProblem(f"/body/{key}", "required: a seq (integer >= 0)",
                                         "integer >= 0", repr(value)))
    if not problems and not 0 <= obj["to"] - obj["from"] <= MAX_REHYDRATE:
        problems.append(FieldProblem("/body/to", f"to must be from..from + {MAX_REHYDRATE}",
                                     f">= {obj['from']}", str(obj["to"])))
    if problems:
        raise ValidationError(problems[0].detail if len(problems) == 1 else
                              f"{len(problems)} problems in the body", problems=problems)
    return {"tenant": tenant, "from": obj["from"], "to": obj["to"]}
