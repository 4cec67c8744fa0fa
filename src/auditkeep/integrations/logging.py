"""`AuditLogHandler`: record audit events through the logging calls a codebase already makes.

    logger.info("refunded order %s", order.id,
                extra={"audit": {"action": "orders.refund", "resource": ("order", order.id)}})
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from auditkeep.integrations._client import AuditEmitter, resolve_client

__all__ = ["AuditLogHandler"]

_MAX_REASON = 1024  # schema v1's limit on `reason`


class AuditLogHandler(logging.Handler):
    """Emits `client.emit(**record.audit)` for each record carrying an `audit` extra and
    ignores every other record, so it can sit on the root logger.

    The record's formatted message becomes the event's `reason` unless the `audit` mapping
    names one. The handler runs on the logging thread, so attach it directly (not behind a
    `QueueHandler`), or the bound context of the caller would be lost. An event the client
    refuses goes to `handleError`, as logging handlers do: logging never raises.
    """

    def __init__(self, client: AuditEmitter | None = None, level: int | str = logging.NOTSET
                 ) -> None:
        super().__init__(level)
        self.client = resolve_client(client, "AuditLogHandler")

    def emit(self, record: logging.LogRecord) -> None:
        audit = getattr(record, "audit", None)
        if audit is None:
            return
        try:
            if not isinstance(audit, Mapping):
                raise TypeError(f"the `audit` extra must be a mapping of emit() arguments, "
                                f"got {type(audit).__name__}")
            fields: dict[str, Any] = dict(audit)
            if "reason" not in fields:
                message = self.format(record)
                if message:  # schema v1 refuses an empty reason; no message means no reason
                    fields["reason"] = message[:_MAX_REASON]
            self.client.emit(**fields)
        except Exception:
            self.handleError(record)
