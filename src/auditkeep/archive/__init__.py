"""The cold archive: sealed ranges of a log as Parquet files with signed manifests, in
a directory or an S3 bucket; verified offline, searched, and rehydrated (docs/archive.md)."""

from auditkeep.archive.job import ArchiveJob
from auditkeep.archive.manifest import Manifest, open_manifest, parse_manifest
from auditkeep.archive.objects import Objects, open_objects
from auditkeep.archive.reading import Rehydration, rehydrate, search_archive
from auditkeep.archive.seal import Archiver, SealReport
from auditkeep.archive.verify import ArchiveReport, Problem, verify_archive

__all__ = [
    "ArchiveJob",
    "ArchiveReport",
    "Archiver",
    "Manifest",
    "Objects",
    "Problem",
    "Rehydration",
    "SealReport",
    "open_manifest",
    "open_objects",
    "parse_manifest",
    "rehydrate",
    "search_archive",
    "verify_archive",
]
