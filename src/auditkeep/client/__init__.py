"""The Python SDK: `emit` audit events from a service without slowing it or losing them.

    client = AuditClient("http://127.0.0.1:8180", token)
    client.emit("orders.delete", actor="alice", resource=("order", "42"))
"""

from auditkeep.client.core import (
    AsyncAuditClient,
    AuditClient,
    configure,
    get_default_client,
    set_default_client,
)
from auditkeep.client.decorators import AuditAction, audit_action, audited
from auditkeep.client.receipts import Receipt, ReceiptReport
from auditkeep.errors import EventError, SpoolFull
from auditkeep.privacy.policy import RedactionPolicy, RedactRule

__all__ = [
    "AsyncAuditClient",
    "AuditAction",
    "AuditClient",
    "EventError",
    "Receipt",
    "ReceiptReport",
    "RedactRule",
    "RedactionPolicy",
    "SpoolFull",
    "audit_action",
    "audited",
    "configure",
    "get_default_client",
    "set_default_client",
]
