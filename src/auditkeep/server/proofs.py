"""Checkpoints, proofs and verifier keys: what lets a client check us without trusting us."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from auditkeep.log.service import tenant_of
from auditkeep.server import params
from auditkeep.server.context import caller, json_response, node
from auditkeep.server.reads import b64
from auditkeep.witness.serving import cosigned_checkpoint


def _log_name(request: Request) -> str:
    """The log in the path, after checking the caller may see it (any scope will do:
    a producer holding receipts must be able to check them)."""
    who = caller(request)
    name: str = request.path_params["tenant"]
    node(request).logs.check_name(name)
    who.tenant_for(tenant_of(name))
    return name


async def get_checkpoint(request: Request) -> Response:
    """The latest signed checkpoint (or that of `size`, or with `witnessed=true` the
    largest one witnesses cosigned), with the witness cosignature lines stored for it."""
    name = _log_name(request)
    params.only(request, {"size", "witnessed"})
    size = params.integer(request, "size", lo=1)
    witnessed = request.query_params.get("witnessed", "false")
    if witnessed not in ("true", "false"):
        raise params.bad("witnessed", "expected true or false", "true, false", witnessed)
    if size is not None and witnessed == "true":
        raise params.bad("witnessed", "give size or witnessed=true, not both", "one of them",
                         witnessed)
    return PlainTextResponse(cosigned_checkpoint(node(request).logs, name, size,
                                                 witnessed == "true"))


async def get_inclusion(request: Request) -> Response:
    name = _log_name(request)
    params.only(request, {"seq", "size"})
    seq = params.required_int(request, "seq")
    size = params.integer(request, "size", lo=1)
    tree_size, leaf, proof = node(request).logs.inclusion_proof(name, seq, size)
    return json_response({"seq": seq, "tree_size": tree_size, "leaf_hash": b64(leaf),
                          "hashes": [b64(h) for h in proof]})


async def get_consistency(request: Request) -> Response:
    name = _log_name(request)
    params.only(request, {"from", "to"})
    first = params.required_int(request, "from", lo=1)
    second = params.integer(request, "to", lo=1)
    if second is None:
        second = node(request).logs.size(name)
    proof = node(request).logs.consistency_proof(name, first, second)
    return json_response({"from": first, "to": second, "hashes": [b64(h) for h in proof]})


async def get_keys(request: Request) -> Response:
    """Verifier keys of every log the caller may see, rotated-out keys included."""
    who = caller(request)
    params.only(request, set())
    n = node(request)
    # Existing logs keep the origin they were created with; a bound token also gets the
    # keys of its tenant's logs before they exist.
    origins = {log.name: log.origin for log in n.logs.logs()
               if who.is_admin or tenant_of(log.name) == who.token.tenant}
    if not who.is_admin and who.token.tenant is not None:
        for extra in (who.token.tenant, who.token.tenant + "._access"):
            origins.setdefault(extra, n.logs.origin(extra))
    keys = []
    for key in n.keys.published():
        for name in sorted(origins):
            v = key.verifier(origins[name])
            keys.append({"name": v.name, "key_id": v.key_id.hex(), "verifier": v.to_string(),
                         "active": key.active, "created": key.created,
                         **({"retired": key.retired} if key.retired else {})})
    return json_response({"keys": keys})
