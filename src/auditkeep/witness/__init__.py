"""Witnesses (c2sp.org/tlog-witness): cosignatures, a witness server and the client that
pushes the log's checkpoints to witnesses and keeps their cosignatures."""

from auditkeep.witness.cosignature import (
    WitnessSigner,
    WitnessVerifier,
    count_cosignatures,
)

__all__ = ["WitnessSigner", "WitnessVerifier", "count_cosignatures"]
