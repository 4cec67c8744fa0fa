"""The NATS JetStream ingest bus between stateless ingest nodes and the sequencers.

    bus = Bus(url, stream=..., replicas=...)    # bus/client.py: the connection, the stream
    bus.connect()                               # ConfigError in one line if not possible
    appender = BusAppender(bus)                 # bus/appender.py: publish, await receipts
    appender.use_store(store, logs.origin)      # LogService(appender=...) calls it
    sequencers = BusSequencers(bus, logs, holder, lease_ttl)  # bus/sequencers.py
    sequencers.start()
    ...
    sequencers.stop(); appender.close(); bus.close()   # before the store closes

bus/codec.py holds what travels: subjects, message ids, prepared events, replies.
"""

from auditkeep.bus.appender import BusAppender, CommitPending
from auditkeep.bus.client import Bus, BusSettings
from auditkeep.bus.sequencers import BusSequencers

__all__ = ["Bus", "BusAppender", "BusSequencers", "BusSettings", "CommitPending"]
