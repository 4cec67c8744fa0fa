"""The log service: one place that owns every log's sequencer and answers reads and proofs.

Append path (sequencers), read/proof path (backend readers) and signer (key ring) stay
separate, as in tessera; this class only wires them and applies log-level rules.

Scaled out (bus/), appends go to an `Appender` instead (the ingest bus), and a
sequencer runs only in the process that holds the log's lease (`lead`).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol

import orjson

from auditkeep.errors import (
    ConfigError,
    FieldProblem,
    NoteError,
    NotFoundError,
    PurgedError,
    ValidationError,
)
from auditkeep.log import merkle
from auditkeep.log.checkpoint import open_checkpoint
from auditkeep.log.compaction import Compaction, append_note, compact_log
from auditkeep.log.keys import KeyRing
from auditkeep.log.lease import LeaseKeeper
from auditkeep.log.sequencer import AppendResult, Sequencer
from auditkeep.pipeline.prepare import Pending
from auditkeep.pipeline.schema import TENANT_PATTERN
from auditkeep.privacy.paths import lookup
from auditkeep.storage.base import Backend, Bundle, LogInfo, PurgedRange, StoredCheckpoint
from auditkeep.storage.runs import covered

log = logging.getLogger(__name__)

ACCESS_SUFFIX = "._access"
_LOG_NAME = re.compile(TENANT_PATTERN[:-1] + r"(\._access)?$")


def access_log_name(tenant: str) -> str:
    return tenant + ACCESS_SUFFIX


def tenant_of(log_name: str) -> str:
    return log_name.removesuffix(ACCESS_SUFFIX)


class Appender(Protocol):
    """Where appends go when sequencers run elsewhere (bus/appender.py)."""

    def append(self, name: str, pendings: list[Pending]) -> Future[AppendResult]:
        """Answered once committed, with receipts (`?wait=committed`)."""
        ...

    def accept(self, name: str, pendings: list[Pending]) -> Future[list[str]]:
        """Answered with the event ids once durably accepted (`?wait=accepted`)."""
        ...


class LogService:
    def __init__(
        self,
        store: Backend,
        keys: KeyRing,
        *,
        origin_prefix: str = "auditkeep.local",
        journal_dir: Path | None = None,
        sequencer_options: dict[str, Any] | None = None,
        appender: Appender | None = None,
    ) -> None:
        self.appender = appender
        self.store = store
        self.keys = keys
        self.origin_prefix = origin_prefix.rstrip("/")
        self._journal_dir = journal_dir
        self._seq_opts = sequencer_options or {}
        self._sequencers: dict[str, Sequencer] = {}
        self._lock = threading.Lock()
        self._commit_listeners: list[Callable[[str, int], None]] = []
        self._bundles: OrderedDict[tuple[int, int], Bundle] = OrderedDict()
        self._bundles_lock = threading.Lock()

    # logs and appends -------------------------------------------------------------

    def origin(self, name: str) -> str:
        return f"{self.origin_prefix}/{name}"

    def check_name(self, name: str) -> None:
        if not _LOG_NAME.match(name):
            raise ValidationError(f"{name!r} is not a log name ([a-z0-9-]{{1,63}}, "
                                  "optionally followed by ._access)")

    def on_commit(self, listener: Callable[[str, int], None]) -> None:
        self._commit_listeners.append(listener)

    def _committed(self, name: str, size: int) -> None:
        for listener in self._commit_listeners:
            listener(name, size)

    def sequencer(self, name: str) -> Sequencer:
        seq = self._sequencers.get(name)
        if seq is not None:
            return seq
        if self.appender is not None:
            raise ConfigError(f"log {name}: sequencers run behind the ingest bus here; "
                              "none is started on demand")
        self.check_name(name)
        with self._lock:
            seq = self._sequencers.get(name)
            if seq is None:
                info = self.store.open_log(name, self.origin(name))
                self._check_not_rolled_back(info)
                seq = Sequencer(self.store, info, self.keys.signer, on_commit=self._committed,
                                on_checkpoint=self._journal, **self._seq_opts)
                self._sequencers[name] = seq
        return seq

    def lead(self, name: str, keeper: LeaseKeeper) -> Sequencer:
        """Start this log's sequencer here under a lease taken by `keeper` (bus/): every
        commit it makes is fenced by that lease. Replaces a fenced-off one."""
        self.check_name(name)
        with self._lock:
            old = self._sequencers.pop(name, None)
        if old is not None:
            old.close()
        info = self.store.get_log(name)
        if info is None:
            raise NotFoundError(f"no log named {name!r}")
        self._check_not_rolled_back(info)
        seq = Sequencer(self.store, info, self.keys.signer, on_commit=self._committed,
                        on_checkpoint=self._journal, lease=keeper, **self._seq_opts)
        with self._lock:
            self._sequencers[name] = seq
        return seq

    def drop(self, name: str) -> None:
        """Stop this log's sequencer here (its lease was lost or released)."""
        with self._lock:
            seq = self._sequencers.pop(name, None)
        if seq is not None:
            seq.close()

    def sequencers(self) -> dict[str, Sequencer]:
        return dict(self._sequencers)

    def append(self, name: str, pendings: list[Pending]) -> Future[AppendResult]:
        if self.appender is not None:
            self.check_name(name)
            return self.appender.append(name, pendings)
        return self.sequencer(name).submit(pendings)

    def accept(self, name: str, pendings: list[Pending]) -> Future[list[str]]:
        """Append without waiting for the commit (`?wait=accepted`): the ids once the
        bus holds the events durably. Without a bus, the same as waiting for it."""
        if self.appender is not None:
            self.check_name(name)
            return self.appender.accept(name, pendings)
        done: Future[list[str]] = Future()
        inner = self.append(name, pendings)

        def finished(f: Future[AppendResult]) -> None:
            exc = f.exception()
            if exc is not None:
                done.set_exception(exc)
            else:
                done.set_result([r.id for r in f.result().receipts])
        inner.add_done_callback(finished)
        return done

    def _journal(self, name: str, note: str) -> None:
        """Append each persisted checkpoint to a plain file outside the database, so a
        database restored from an older copy is caught by `verify` (rollback)."""
        path = self.journal_path(name)
        if path is None:
            return
        try:
            append_note(path, note)  # under the lock a compaction of the journal takes
        except OSError:
            # The commit is durable already; failing it now would tell the producer a
            # lie. The journal is evidence only: log loudly, keep serving.
            log.exception("could not append to the checkpoint journal %s", path)

    def journal_path(self, name: str) -> Path | None:
        return None if self._journal_dir is None else self._journal_dir / f"{name}.checkpoints"

    def compact_checkpoints(self, now: float | None = None,
                            stopping: Callable[[], bool] = lambda: False) -> list[Compaction]:
        """Thin out every log's stored checkpoints and journal (log/compaction.py), log by
        log until `stopping()`."""
        now = time.time() if now is None else now
        done = []
        for info in self.store.list_logs():
            if stopping():
                break
            verifiers = [k.verifier(info.origin) for k in self.keys.published()]
            done.append(compact_log(self.store, info, verifiers, self.journal_path(info.name),
                                    now))
        return done

    def _check_not_rolled_back(self, info: LogInfo) -> None:
        """Refuse to write to a log whose database is older than its checkpoint journal
        (restored from an old copy, or truncated): appending would sign checkpoints that
        fork from ones already handed out."""
        path = self.journal_path(info.name)
        if path is None or not path.exists():
            return
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 8192))
            notes = [n for n in f.read().split(b"\x00\n") if n.strip()]
        if not notes:
            return
        verifiers = [k.verifier(info.origin) for k in self.keys.published()]
        try:
            cp, _ = open_checkpoint(notes[-1], verifiers, origin=info.origin)
        except NoteError:
            return  # junk at the journal's end proves nothing (`verify` reports real forks)
        if cp.size > info.size:
            raise ConfigError(
                f"log {info.name} was rolled back: its checkpoint journal holds a signed "
                f"checkpoint of size {cp.size}, the database only {info.size} entries. "
                "Refusing to append (it would fork the log); run `auditkeep verify`.")
        mine = info.root if cp.size == info.size else (
            merkle.root_from_reader(cp.size, self._reader(info.id)) if cp.size else cp.root)
        if mine != cp.root:
            raise ConfigError(
                f"log {info.name} disagrees with its checkpoint journal at size {cp.size}; "
                "refusing to append; run `auditkeep verify`.")

    def close(self) -> None:
        with self._lock:
            for s in self._sequencers.values():
                s.close()
            self._sequencers.clear()

    def info(self, name: str) -> LogInfo:
        self.check_name(name)
        seq = self._sequencers.get(name)
        if seq is not None:
            return seq.info
        info = self.store.get_log(name)
        if info is None:
            raise NotFoundError(f"no log named {name!r}")
        return info

    def size(self, name: str) -> int:
        """The committed size (what proofs may be asked against)."""
        log = self.store.get_log(name)
        if log is None:
            raise NotFoundError(f"no log named {name!r}")
        return log.size

    def logs(self) -> list[LogInfo]:
        return self.store.list_logs()

    # checkpoints and proofs -------------------------------------------------------------

    def checkpoint(self, name: str) -> StoredCheckpoint:
        seq = self._sequencers.get(name)
        latest = seq.latest_checkpoint() if seq is not None else None
        if latest is None:
            latest = self.store.latest_checkpoint(self.info(name).id)
        if latest is None and self.appender is None:
            # First read of a log nobody has written to yet: start its sequencer, which
            # signs the empty tree. (Behind a bus, its leader does that on taking it.)
            latest = self.sequencer(name).latest_checkpoint()
        if latest is None:
            raise NotFoundError(f"log {name!r} has no checkpoint yet")
        return latest

    def _reader(self, log_id: int) -> merkle.NodeReader:
        return lambda coords: self.store.read_nodes(log_id, coords)

    def inclusion_proof(self, name: str, seq: int, size: int | None = None) -> tuple[int, bytes,
                                                                                        list[bytes]]:
        info = self.info(name)
        committed = self.size(name)
        size = committed if size is None else size
        if not 0 < size <= committed:
            raise _bad("size", f"size {size} is outside the log", f"1..{committed}", size)
        if not 0 <= seq < size:
            raise _bad("seq", f"seq {seq} is not in a tree of size {size}", f"0..{size - 1}",
                       seq)
        read = self._reader(info.id)
        leaf = read([(0, seq)])[0]
        return size, leaf, merkle.inclusion_proof(seq, size, read)

    def consistency_proof(self, name: str, first: int, second: int) -> list[bytes]:
        info = self.info(name)
        committed = self.size(name)
        if not 0 < first <= second:
            raise _bad("from", f"from={first} must be at least 1 and at most to={second}",
                       f"1..{second}", first)
        if second > committed:
            raise _bad("to", f"to={second} is beyond the log's size {committed}",
                       f"<= {committed}", second)
        return merkle.consistency_proof(first, second, self._reader(info.id))

    def root(self, name: str, size: int) -> bytes:
        info = self.info(name)
        return merkle.root_from_reader(size, self._reader(info.id))

    # entries and records ----------------------------------------------------------------

    def _bundle_for(self, log_id: int, seq: int, *, cached: bool = True) -> Bundle | None:
        if cached:
            with self._bundles_lock:
                for (lid, first), b in reversed(self._bundles.items()):
                    if lid == log_id and first <= seq < first + len(b.entries):
                        self._bundles.move_to_end((lid, first))
                        return b
        found = self.store.read_bundles(log_id, seq, seq + 1)
        if not found:
            return None
        b = found[0]
        with self._bundles_lock:
            self._bundles[(log_id, b.first_seq)] = b
            while len(self._bundles) > 256:
                self._bundles.popitem(last=False)
        return b

    def forget_bundles(self, log_id: int) -> None:
        """Drop the cached bundles of a log: retention and rehydration call it after
        they changed its bundles (purge, restore), so the memory holds no purged bytes."""
        with self._bundles_lock:
            for key in [k for k in self._bundles if k[0] == log_id]:
                del self._bundles[key]

    def entry(self, name: str, seq: int) -> bytes:
        """The canonical bytes at `seq`. PurgedError (410) if retention purged them."""
        info = self.info(name)
        if not 0 <= seq < self.size(name):
            raise NotFoundError(f"log {name!r} has no seq {seq}")
        return self._entry(name, info.id, seq, self.store.purged_ranges(info.id, seq, seq + 1))

    def _entry(self, name: str, log_id: int, seq: int, marks: list[PurgedRange]) -> bytes:
        # The purge marks decide, not the cache: a purge made by another process (or
        # before forget_bundles) must not be served from bundles cached here.
        mark = covered(marks, seq)
        if mark is not None:
            raise PurgedError(name, seq, mark.record_seq)
        b = self._bundle_for(log_id, seq)
        if b is not None and not b.entries[seq - b.first_seq]:
            b = self._bundle_for(log_id, seq, cached=False)  # restored since it was cached?
        if b is None:
            raise NotFoundError(f"log {name!r}: seq {seq} is not stored")
        data = b.entries[seq - b.first_seq]
        if not data:  # no canonical entry is empty: its bytes went without a purge mark
            raise PurgedError(name, seq)
        return data

    def records(self, name: str, seqs: Iterable[int], *, personal: bool) -> list[dict[str, Any]]:
        """Stored records for `seqs` (in that order), personal values filled in if allowed.
        Purged seqs are left out: search hits may lag a purge."""
        seqs = list(seqs)
        if not seqs:
            return []
        info = self.info(name)
        size = self.size(name)
        marks = self.store.purged_ranges(info.id, min(seqs), max(seqs) + 1)
        out = []
        for s in seqs:
            if not 0 <= s < size:
                raise NotFoundError(f"log {name!r} has no seq {s}")
            try:
                out.append(orjson.loads(self._entry(name, info.id, s, marks)))
            except PurgedError:
                continue
        if personal and out:
            values = self.store.read_personal(info.id, [r["seq"] for r in out])
            for rec in out:
                reveal(rec, values.get(rec["seq"]))
        return out


def _bad(param: str, detail: str, expected: str, actual: int) -> ValidationError:
    return ValidationError(detail, problems=[FieldProblem(f"/query/{param}", detail, expected,
                                                          str(actual))])


def reveal(record: dict[str, Any], values: dict[str, list[Any]] | None) -> None:
    """Put personal values back in place of their commitments (for allowed readers).
    Keys are `actor.<field>` or, for fields a `commit` redaction named, JSON pointers."""
    if not values:
        return
    for path, (_salt, value) in values.items():
        place = lookup(record, path)
        if place is None:
            continue
        obj, last = place
        held = obj[last]
        if isinstance(held, dict) and "$c" in held:
            obj[last] = value
