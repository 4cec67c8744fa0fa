"""Retention: policies that purge old entries (proofs intact), and legal holds that stop them.

docs/retention.md and docs/holds.md. `Retention` (purge.py) is the entry point: the
effective policy of a tenant, the dry-run plan and the purge; `RetentionJob` runs it on
a schedule.
"""

from auditkeep.retention.job import RetentionJob
from auditkeep.retention.plan import KEPT_RECORDS, CategoryPlan, LogPlan
from auditkeep.retention.policy import CATEGORIES, Keep, Layer, Policy
from auditkeep.retention.purge import PURGE_ACTION, PurgeResult, Retention, RunReport

__all__ = ["CATEGORIES", "KEPT_RECORDS", "PURGE_ACTION", "CategoryPlan", "Keep", "Layer",
           "LogPlan", "Policy", "PurgeResult", "Retention", "RetentionJob", "RunReport"]
