"""`auditkeep archive run|list|rehydrate` through the HTTP API (admin), and
`auditkeep archive verify URL`, which needs nothing but the archive (docs/archive.md)."""

from __future__ import annotations

from typing import Any

import click
import orjson

from auditkeep.archive.objects import open_objects
from auditkeep.archive.verify import verify_archive
from auditkeep.cli.http import Api, url_option
from auditkeep.cli.main import EXIT_FAILURE, EXIT_USAGE, CliError
from auditkeep.datadir import data_dir
from auditkeep.errors import NoteError
from auditkeep.log.note import Verifier
from auditkeep.storage.base import Backend

_json = click.option("--json", "as_json", is_flag=True, help="Print the server's JSON.")


def _echo_json(body: Any) -> None:
    click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())


@click.group()
def archive() -> None:
    """The cold archive: sealed ranges as Parquet files with signed manifests."""


@archive.command("run")
@url_option
@_json
def run(url: str, token: str | None, as_json: bool) -> None:
    """Seal every range that is due now (a persisted checkpoint covers it)."""
    with Api(url, token, timeout=600.0) as api:
        body = api.request("POST", "/v1/archive/run").json()
    if as_json:
        _echo_json(body)
        return
    for r in body["sealed"]:
        click.echo(f"sealed [{r['first']}, {r['end']}) -> {r['url']}")
    for r in body["skipped"]:
        click.echo(f"skipped {r['log']} [{r['first']}, {r['end']}): {r['reason']}")
    click.echo(f"{len(body['sealed'])} range(s) sealed, {len(body['skipped'])} skipped")


@archive.command("list")
@url_option
@click.option("--tenant", default=None, help="Only this tenant's logs.")
@_json
def list_(url: str, token: str | None, tenant: str | None, as_json: bool) -> None:
    """The archived ranges, by log and first seq."""
    with Api(url, token) as api:
        body = api.get_json("/v1/archive", tenant=tenant)
    if as_json:
        _echo_json(body)
        return
    click.echo(f"archive {body['url']} (ranges of {body['range']:,})")
    for r in body["ranges"]:
        click.echo(f"{r['log']} [{r['first']}, {r['end']}) checkpoint {r['checkpoint_size']} "
                   f"sha256 {r['sha256'][:16]}… {r['created']}")


@archive.command("rehydrate")
@url_option
@click.option("--tenant", required=True, help="The tenant (or T._access) whose log to refill.")
@click.option("--from", "first", type=int, required=True, help="First seq.")
@click.option("--to", "end", type=int, required=True, help="End seq (not included).")
@_json
def rehydrate(url: str, token: str | None, tenant: str, first: int, end: int,
              as_json: bool) -> None:
    """Put archived entries of seqs [from, to) back where retention purged them."""
    with Api(url, token, timeout=600.0) as api:
        body = api.request("POST", "/v1/archive/rehydrate",
                           json={"tenant": tenant, "from": first, "to": end}).json()
    if as_json:
        _echo_json(body)
        return
    click.echo(f"{body['log']} [{body['from']}, {body['to']}): {body['checked']} entries "
               f"checked against the tree, {body['restored']} restored from "
               f"{body['ranges']} range(s)")


@archive.command("verify")
@click.argument("archive_url", metavar="URL")
@click.option("--key", "keys", multiple=True, metavar="VKEY",
              help="Trust this log key (name+id+key, as GET /v1/keys lists). Repeatable. "
                   "Without it each manifest's embedded keys are used.")
@click.option("--log", "only", multiple=True, help="Only these logs (repeatable).")
@click.option("--data", default=None, metavar="DIR",
              help="Also compare every leaf with this data directory's tiles.")
@click.option("--storage", default=None, metavar="URL",
              help="Also compare every leaf with this PostgreSQL store's tiles.")
@click.option("--endpoint", default=None, envvar="AWS_ENDPOINT_URL",
              help="S3 endpoint [env AWS_ENDPOINT_URL].")
@click.option("--region", default=None, envvar="AWS_REGION", help="S3 region [env AWS_REGION].")
@click.option("--allow-http", is_flag=True, help="Allow an http:// S3 endpoint.")
def verify(archive_url: str, keys: tuple[str, ...], only: tuple[str, ...], data: str | None,
           storage: str | None, endpoint: str | None, region: str | None,
           allow_http: bool) -> None:
    """Check every manifest, file digest, leaf hash, subtree proof and checkpoint under
    URL. Exit 1 if anything is wrong, naming the file, seq and check."""
    for k in keys:
        try:
            Verifier.parse(k)
        except NoteError as exc:
            raise CliError(f"--key: {exc.detail}", EXIT_USAGE) from None
    objects = open_objects(archive_url, create=False, endpoint=endpoint, region=region,
                           allow_http=allow_http)
    hot: Backend | None = None
    if data or storage:
        d = data_dir(data, storage)
        d.require()
        hot = d.open_backend()
    try:
        report = verify_archive(objects, keys, hot=hot, only=only)
    finally:
        if hot is not None:
            hot.close()
    if report.embedded_keys:
        click.echo("note: no --key given: signatures are checked with the keys each manifest "
                   "carries (proves integrity, not who signed; pass --key to pin the log key)")
    for r in report.ranges:
        status = "ok" if r.ok else "FAILED"
        where = f"{r.log} [{r.first}, {r.end})" if r.log else r.manifest
        click.echo(f"{where}: {r.rows} entries: {status}")
        for p in r.problems:
            click.echo(f"  {p}")
    for name in report.orphans:
        click.echo(f"note: {name} has no manifest (an interrupted seal? it is not verified)")
    click.echo(f"verified {len(report.ranges)} range(s) under {report.url}")
    if not report.ranges:
        raise CliError(f"no manifests under {report.url}", EXIT_FAILURE)
    if not report.ok:
        raise CliError(f"{len(report.problems)} problem(s) found", EXIT_FAILURE)
