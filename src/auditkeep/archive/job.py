"""The scheduled archiver: seals what is due every `schedule` seconds, in the one
process of a deployment that runs background jobs (datadir.Node.start_background)."""

from __future__ import annotations

from auditkeep.archive.objects import Objects
from auditkeep.archive.seal import Archiver, SealReport
from auditkeep.background import BackgroundLoop
from auditkeep.log.service import LogService

#: Ranges sealed per pass before the loop looks at `stop` again (a backlog of many
#: ranges is worked off pass after pass, without waiting for the schedule).
PER_PASS = 16


class ArchiveJob(BackgroundLoop):
    def __init__(self, logs: LogService, objects: Objects, width: int, schedule: float) -> None:
        super().__init__("archiver", schedule)
        self.archiver = Archiver(logs, objects, width)
        self.last: SealReport | None = None

    def step(self) -> bool:
        self.last = self.archiver.run(limit=PER_PASS)
        return len(self.last.sealed) == PER_PASS
