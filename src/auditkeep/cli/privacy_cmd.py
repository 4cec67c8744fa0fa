"""`auditkeep erase`, `auditkeep subjects export` and `auditkeep scan-pii`
(docs/privacy.md)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click
import orjson
from rich.table import Table
from rich.text import Text

from auditkeep.cli.http import Api, url_option
from auditkeep.cli.main import EXIT_USAGE, CliError
from auditkeep.cli.render import console
from auditkeep.datadir import data_dir
from auditkeep.privacy.detectors import DEFAULT_DETECTORS, DETECTORS

_tenant = click.option("--tenant", default=None, help="Admin tokens: the tenant to act on.")


def _echo_json(body: Any) -> None:
    click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())


@click.command()
@url_option
@click.option("--subject", required=True,
              help="The data subject: an actor id, an email, or a pseudonym (pn_...).")
@click.option("--legal-basis", required=True,
              help="Why, for the record (e.g. \"GDPR Art. 17(1)(a), ticket 4711\").")
@_tenant
@click.option("--json", "as_json", is_flag=True, help="Print the server's JSON.")
def erase(url: str, token: str | None, subject: str, legal_basis: str, tenant: str | None,
          as_json: bool) -> None:
    """Erase a data subject's personal values and raw objects; every proof stays valid
    and an erasure record is appended to the log. Needs the privacy scope."""
    with Api(url, token) as api:
        body = api.request("POST", "/v1/erasure",
                           params={"tenant": tenant} if tenant else None,
                           json={"subject": subject, "legal_basis": legal_basis}).json()
    if as_json:
        _echo_json(body)
        return
    if not body["events"]:
        click.echo(f"nothing held for subject {body['subject']} in tenant {body['tenant']} "
                   f"(already erased, or never seen)")
        return
    click.echo(f"erased subject {body['subject']} in tenant {body['tenant']}: "
               f"{body['events']} events, {body['values']} personal values, "
               f"{body['raws']} raw objects; erasure record {body['record_id']} "
               f"at seq {body['record_seq']}")


@click.group()
def subjects() -> None:
    """Data subjects: what is held about one (access requests, GDPR Art. 15)."""


@subjects.command("export")
@url_option
@click.argument("subject")
@_tenant
@click.option("-o", "--output", type=click.File("wb"), default="-",
              help="Write the events as NDJSON here (default: standard output).")
def export(url: str, token: str | None, subject: str, tenant: str | None, output: Any) -> None:
    """Every event holding SUBJECT's personal values or raw objects, with them, as
    NDJSON ({record, raw}). The export is recorded in the _access log."""
    after: int | None = None
    n = 0
    with Api(url, token) as api:
        while True:
            body = api.get_json(f"/v1/subjects/{quote(subject, safe='')}/events",
                                tenant=tenant, after=after, limit=1000)
            for item in body["events"]:
                output.write(orjson.dumps(item) + b"\n")
                n += 1
            after = body.get("next_after")
            if after is None:
                break
    click.echo(f"{n} events of subject {body['subject']}", err=True)


@click.command("scan-pii")
@click.option("--data", "data", envvar="AUDITKEEP_DATA", default=None, metavar="DIR",
              help="Data directory [env AUDITKEEP_DATA].")
@click.option("--tenant", "tenants", multiple=True, help="Only these tenants (repeatable).")
@click.option("--detector", "detectors", multiple=True,
              help=f"Only these detectors (repeatable; default all but ipv4/ipv6). "
                   f"One of: {', '.join(DETECTORS)}.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def scan_pii(data: str | None, tenants: tuple[str, ...], detectors: tuple[str, ...],
             as_json: bool) -> None:
    """Run the PII and secret detectors over stored records and raw objects; report
    findings by tenant, action, path and rule (never the values). Exit 1 on findings."""
    from auditkeep.privacy.scan import scan_store

    unknown = [d for d in detectors if d not in DETECTORS]
    if unknown:
        raise CliError(f"--detector: unknown detector {unknown[0]!r} (one of "
                       f"{', '.join(DETECTORS)})", EXIT_USAGE)
    d = data_dir(data)
    d.require()
    store = d.open_backend()
    try:
        report = scan_store(store, tenants=tenants, detectors=detectors or DEFAULT_DETECTORS)
    finally:
        store.close()
    if as_json:
        _echo_json(report.to_json())
    else:
        _print(report)
    if report.counts:
        raise SystemExit(1)


def _print(report: Any) -> None:
    click.echo(f"scanned {report.scanned} records: {report.flagged} with findings")
    if not report.counts:
        return
    table = Table(box=None, header_style="bold")
    for c in ("tenant", "action", "path", "rule", "count"):
        table.add_column(Text(c), overflow="fold")
    for (t, a, p, r), n in sorted(report.counts.items()):
        table.add_row(Text(t), Text(a), Text(p), Text(r), Text(str(n)))
    console().print(table)
    if report.samples:
        click.echo("samples (seq, id, path, rule):")
        for s in report.samples:
            click.echo(f"  {s.tenant} seq {s.seq} {s.id} {s.path} {s.rule}")
