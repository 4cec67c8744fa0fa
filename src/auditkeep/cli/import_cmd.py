"""`auditkeep import cloudtrail|gcp PATH...`: load exported audit logs through their source
endpoint, each record's exact bytes kept as its raw.

Records are mapped here first, so one that cannot be mapped is reported (file, position,
field) and skipped instead of failing a whole batch; the rest go in batches of up to
1,000 records, retried on 503 as `Retry-After` says. Ids are derived from the records
(CloudTrail `eventID`, GCP `insertId`), so importing the same files again stores nothing
twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import click

from auditkeep.cli.http import Api, describe_problem, url_option
from auditkeep.cli.main import EXIT_FAILURE, CliError
from auditkeep.errors import ValidationError
from auditkeep.sources import cloudtrail, gcp

BATCH_RECORDS = 1000
BATCH_BYTES = 8 << 20


class _Item(NamedTuple):
    path: Path
    position: int
    raw: bytes
    obj: Any


@click.group(name="import")
def import_() -> None:
    """Load exported audit logs (CloudTrail, Google Cloud) into a tenant's log."""


@import_.command(name="cloudtrail")
@url_option
@click.option("--tenant", default=None, help="Admin tokens: the tenant to write to.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def import_cloudtrail(url: str, token: str | None, tenant: str | None,
                      paths: tuple[str, ...]) -> None:
    """CloudTrail log files as delivered to S3 (*.json, *.json.gz, directory trees)."""
    errors: list[str] = []
    items = (_Item(*r) for r in cloudtrail.read_cloudtrail_paths(
        paths, on_error=lambda p, e: errors.append(f"{p}: {_why(e)}")))
    with Api(url, token) as api:
        _run(api, "/v1/sources/cloudtrail", tenant, items, cloudtrail.map_record,
             lambda raws: b'{"Records":[' + b",".join(raws) + b"]}", errors)


@import_.command(name="gcp")
@url_option
@click.option("--tenant", default=None, help="Admin tokens: the tenant to write to.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
def import_gcp(url: str, token: str | None, tenant: str | None, paths: tuple[str, ...]) -> None:
    """Google Cloud audit log exports (JSON lines from a log sink, gcloud JSON arrays)."""
    errors: list[str] = []
    items = (_Item(*r) for r in gcp.read_gcp_paths(
        paths, on_error=lambda p, e: errors.append(f"{p}: {_why(e)}")))
    with Api(url, token) as api:
        _run(api, "/v1/sources/gcp", tenant, items, gcp.map_log_entry,
             lambda raws: b"[" + b",".join(raws) + b"]", errors)


def _run(api: Api, path: str, tenant: str | None, items: Iterator[_Item],
         mapper: Callable[[Any], Any], body_of: Callable[[list[bytes]], bytes],
         errors: list[str]) -> None:
    stored = duplicates = records = 0
    batch: list[_Item] = []
    size = 0

    def count(answer: dict[str, Any]) -> None:
        nonlocal stored, duplicates
        dup = sum(1 for r in answer["receipts"] if r.get("duplicate"))
        duplicates += dup
        stored += len(answer["receipts"]) - dup

    def send() -> None:
        nonlocal batch, size
        if not batch:
            return
        try:
            count(_post(api, path, tenant, body_of([i.raw for i in batch])))
        except _Conflict:
            # An id reused with other content (409): one record at a time, to name it.
            for item in batch:
                try:
                    count(_post(api, path, tenant, body_of([item.raw])))
                except _Conflict as exc:
                    errors.append(f"{item.path}:{item.position}: skipped, {exc}")
        batch, size = [], 0

    for item in items:
        records += 1
        try:
            mapper(item.obj)
        except ValidationError as exc:
            first = exc.problems[0] if exc.problems else None
            where = f"{first.pointer}: {first.detail}" if first else exc.detail
            errors.append(f"{item.path}:{item.position}: skipped, cannot be mapped ({where})")
            continue
        if size + len(item.raw) > BATCH_BYTES or len(batch) >= BATCH_RECORDS:
            send()
        batch.append(item)
        size += len(item.raw) + 1
    send()
    for line in errors:
        click.echo(line, err=True)
    click.echo(f"{records} records: {stored} stored, {duplicates} already stored, "
               f"{len(errors)} problem(s)")
    if errors:
        raise CliError(f"{len(errors)} problem(s) while importing (listed above)",
                       EXIT_FAILURE)


def _post(api: Api, path: str, tenant: str | None, body: bytes) -> dict[str, Any]:
    params = {"tenant": tenant} if tenant else {}
    for _ in range(60):
        resp = api.raw("POST", path, content=body, params=params,
                       headers={"Content-Type": "application/json"})
        if resp.status_code == 503:
            time.sleep(float(resp.headers.get("retry-after", "1") or 1))
            continue
        if resp.status_code == 409:
            raise _Conflict(describe_problem(resp))
        if resp.status_code >= 400:
            raise CliError(describe_problem(resp), EXIT_FAILURE)
        answer: dict[str, Any] = resp.json()
        return answer
    raise CliError("the server stayed overloaded (503) for a minute; try again later",
                   EXIT_FAILURE)


class _Conflict(Exception):
    """The server holds another event under one of the batch's ids."""


def _why(exc: Exception) -> str:
    return exc.detail if isinstance(exc, ValidationError) else str(exc)
