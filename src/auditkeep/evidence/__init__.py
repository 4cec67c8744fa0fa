"""Evidence bundles for auditors (docs/evidence.md); tools/verify_evidence.py checks them."""

from auditkeep.evidence.bundle import (
    FORMAT,
    MAX_EVENTS,
    Selection,
    build_bundle,
    choose_checkpoint,
    select_seqs,
    tlog_proof,
)
from auditkeep.evidence.layout import write_zip

__all__ = ["FORMAT", "MAX_EVENTS", "Selection", "build_bundle", "choose_checkpoint",
           "select_seqs", "tlog_proof", "write_zip"]
