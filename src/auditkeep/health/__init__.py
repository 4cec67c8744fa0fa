"""Operating auditkeep: its SLIs, SLOs and burn-rate alerts, the canary and self-audit."""
