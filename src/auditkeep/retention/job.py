"""The scheduled retention job: a purge pass every `retention.schedule` (1h by default).

`serve` builds it (as `n.options["retention"]`) in the process that runs background
jobs; `Node.start_background` starts it. A pass that stops at its limit is followed by
the next at once; between passes the job sleeps for the schedule.
"""

from __future__ import annotations

import logging

from auditkeep.background import BackgroundLoop
from auditkeep.retention.purge import JOB_ACTOR, Retention, RunReport

log = logging.getLogger(__name__)


class RetentionJob(BackgroundLoop):
    """Runs `retention` on a schedule (`interval` seconds; None: only when asked, by
    `POST /v1/retention/run`)."""

    def __init__(self, retention: Retention, interval: float | None) -> None:
        super().__init__("retention", interval or 0.0)
        self.retention = retention
        self.interval = interval
        self.last: RunReport | None = None
        self.purged = 0  # events purged by the scheduled passes since it started

    def start(self) -> None:
        if self.interval is not None:
            super().start()

    def status(self) -> dict[str, object]:
        return {"schedule": self.interval, "purged": self.retention.purged,
                "last_run": self.retention.last_run, "last_error": self.last_error}

    def step(self) -> bool:
        report = self.retention.run(actor=JOB_ACTOR, passes=1)
        self.last = report
        self.purged += report.events
        for p in report.purges:
            log.info("retention: purged %d events of log %s (seq %d..%d), record %s at "
                     "seq %d", p.events, p.log, p.first_seq, p.last_seq, p.record_id,
                     p.record_seq)
        return report.more


__all__ = ["RetentionJob"]
