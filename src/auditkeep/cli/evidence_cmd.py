"""`auditkeep evidence`: fetch an evidence bundle for an auditor (docs/evidence.md)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from auditkeep.cli.http import url_option
from auditkeep.cli.query_api import QueryApi

MAX_EVENTS = 10_000  # the server's cap (auditkeep.evidence.MAX_EVENTS)


@click.command()
@url_option
@click.option("--query", "-q", default="", metavar="QUERY",
              help="Which events (query language, docs/query.md) [default: all].")
@click.option("--since", help="RFC 3339, or 15m / 24h / 7d.")
@click.option("--until", help="RFC 3339, or 15m / 24h / 7d.")
@click.option("--tenant", default=None, help="Admin tokens: the tenant (or T._access).")
@click.option("--limit", type=click.IntRange(1, MAX_EVENTS), default=None,
              help=f"Refuse if the query selects more events than this [default and "
                   f"maximum: {MAX_EVENTS:,}].")
@click.option("-o", "--output", required=True, metavar="FILE.zip",
              help="Write the bundle here (via FILE.part, renamed when complete).")
def evidence(url: str, token: str | None, query: str, since: str | None, until: str | None,
             tenant: str | None, limit: int | None, output: str) -> None:
    """Build an evidence bundle of the events QUERY selects, for an auditor to verify
    offline with tools/verify_evidence.py (needs a token with scope audit)."""
    params = {"query": query, "since": since, "until": until, "tenant": tenant,
              "limit": limit}
    with QueryApi(url, token, timeout=300.0) as api:
        resp = api.call("GET", "/v1/evidence", query=query, params=params)
    dest = Path(output)
    part = dest.with_name(dest.name + ".part")
    part.write_bytes(resp.content)
    os.replace(part, dest)
    events = resp.headers.get("x-auditkeep-events", "?")
    click.echo(f"{dest}: {events} event(s), {len(resp.content):,} bytes. Verify with:\n"
               f"  python3 tools/verify_evidence.py {dest} --key '<the log key, "
               "obtained out of band>'")
