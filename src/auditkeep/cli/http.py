"""The CLI's HTTP side: where the server is, which token, and problem+json as one line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import httpx

from auditkeep.cli.main import EXIT_FAILURE, EXIT_USAGE, CliError
from auditkeep.datadir import DEFAULT_DATA

DEFAULT_URL = "http://127.0.0.1:8180"


def url_option(f: Any) -> Any:
    f = click.option("--url", envvar="AUDITKEEP_URL", default=DEFAULT_URL, show_default=True,
                     help="Server URL [env AUDITKEEP_URL].")(f)
    return click.option("--token", envvar="AUDITKEEP_TOKEN", default=None,
                        help="API token [env AUDITKEEP_TOKEN; default: the admin token of "
                             "./.auditkeep-data or $AUDITKEEP_DATA].")(f)


def resolve_token(token: str | None) -> str:
    if token:
        return token.strip()
    path = Path(os.environ.get("AUDITKEEP_DATA") or DEFAULT_DATA) / "admin.token"
    if path.exists():
        return path.read_text().strip()
    raise CliError("no token: pass --token or set AUDITKEEP_TOKEN", EXIT_USAGE)


class Api:
    def __init__(self, url: str, token: str | None, timeout: float = 60.0) -> None:
        self._client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout,
                                    headers={"Authorization": f"Bearer {resolve_token(token)}"})

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        resp = self._client.request(method, path, **kw)
        if resp.status_code >= 400:
            raise CliError(describe_problem(resp), EXIT_FAILURE)
        return resp

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def raw(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """The response whatever its status (the caller decides, e.g. to retry a 503)."""
        return self._client.request(method, path, **kw)

    def get_json(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items()
                                                 if v is not None}).json()


def describe_problem(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return f"server answered {resp.status_code}: {resp.text[:200]}"
    text = f"{resp.status_code} {body.get('title', '')}: {body.get('detail', '')}"
    errors = body.get("errors") or []
    if errors:
        shown = "; ".join(f"{e.get('pointer')}: {e.get('detail')}" for e in errors[:5])
        more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
        text += f" [{shown}{more}]"
    return text
