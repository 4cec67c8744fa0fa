"""The one thing integrations need from a client, and where they find one."""

from __future__ import annotations

from typing import Any, Protocol

from auditkeep.client import get_default_client
from auditkeep.errors import ConfigError

__all__ = ["AuditEmitter", "resolve_client"]


class AuditEmitter(Protocol):
    """What integrations call: `AuditClient` satisfies it, and so does a test's recorder.
    Keyword-only here so that any client whose `emit` also takes them by position fits."""

    def emit(self, *, action: str, actor: Any = None, outcome: str = "success",
             **fields: Any) -> str: ...


def resolve_client(client: AuditEmitter | None, who: str) -> AuditEmitter:
    """`client`, else the process's default client; an integration asked to record events
    with neither fails at set-up rather than at the first request."""
    if client is not None:
        return client
    default = get_default_client()
    if default is None:
        raise ConfigError(
            f"{who} records events but has no client: pass client=... or call "
            "auditkeep.client.set_default_client(...) before setting it up")
    return default
