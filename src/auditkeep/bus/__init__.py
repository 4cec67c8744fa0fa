"""The NATS JetStream ingest bus between stateless ingest nodes and the sequencers."""

from auditkeep.bus.appender import BusAppender, CommitPending
from auditkeep.bus.client import Bus, BusSettings
from auditkeep.bus.sequencers import BusSequencers

__all__ = ["Bus", "BusAppender", "BusSequencers", "BusSettings", "CommitPending"]
