"""Sources: wire formats of other systems turned into schema v1 events (pure functions)."""

from auditkeep.sources import k8s

__all__ = ["k8s"]
