"""Sources: wire formats of other systems turned into schema v1 events (pure functions)."""

from auditkeep.sources import cloudtrail, gcp, k8s, syslog

__all__ = ["cloudtrail", "gcp", "k8s", "syslog"]
