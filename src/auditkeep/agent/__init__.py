"""`auditkeep agent`: follow log files (JSON lines, Kubernetes audit logs) into the
server through the SDK's spool, with durable offsets and rotation handling."""

from auditkeep.agent.config import (
    AgentConfig,
    FileConfig,
    config_from_flags,
    load_config,
    parse_config,
)
from auditkeep.agent.runner import Agent, Counters, EventSink, open_client
from auditkeep.agent.tail import Follower, Line, OffsetStore

__all__ = [
    "Agent",
    "AgentConfig",
    "Counters",
    "EventSink",
    "FileConfig",
    "Follower",
    "Line",
    "OffsetStore",
    "config_from_flags",
    "load_config",
    "open_client",
    "parse_config",
]
