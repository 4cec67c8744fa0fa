"""Checkpoint compaction: the policy, and that a compacted log still verifies and still
shows rollback, forks and bad checkpoints."""

from __future__ import annotations

import fcntl
import itertools
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditkeep.cli.main import cli
from auditkeep.datadir import DataDir, open_node
from auditkeep.errors import ConfigError
from auditkeep.log import merkle
from auditkeep.log.checkpoint import Checkpoint, sign_checkpoint
from auditkeep.log.compaction import (
    DAY,
    HOUR,
    SEPARATOR,
    append_note,
    retained,
    rewrite_journal,
)
from auditkeep.log.note import Signer
from tests.log.tamper import Attacker, populate
from tests.log.test_rollback import backup
from tests.log.test_verify import ORIGIN, real_signer, run_verify

NOW = 1_800_000_000.0  # a fixed "now" (2027-01-15) for the policy tests


class TestRetention:
    def test_everything_of_the_last_hour_is_kept(self) -> None:
        times = [NOW - HOUR + 1 + i for i in range(0, 3000, 3)]
        assert retained(times, NOW) == set(range(len(times)))

    def test_older_than_an_hour_keeps_the_last_of_each_hour_for_a_week(self) -> None:
        start = (NOW - 3 * DAY) // HOUR * HOUR  # an hour boundary, three days ago
        times = [start + i * 600 for i in range(6 * 24)]  # every 10 minutes for a day
        kept = retained(times, NOW)
        assert kept == {0} | {i for i in range(len(times)) if i % 6 == 5}

    def test_older_than_a_week_keeps_the_last_of_each_day(self) -> None:
        start = (NOW - 30 * DAY) // DAY * DAY
        times = [start + i * HOUR for i in range(24 * 5)]  # hourly for five days
        kept = retained(times, NOW)
        assert kept == {0} | {i for i in range(len(times)) if i % 24 == 23}

    def test_the_first_and_the_newest_are_always_kept(self) -> None:
        times = [NOW - 40 * DAY + i for i in range(10)]  # all in one old day
        assert retained(times, NOW) == {0, 9}

    def test_unknown_times_are_kept(self) -> None:
        times: list[float | None] = [NOW - 20 * DAY, None, NOW - 20 * DAY + 1, NOW - 20 * DAY + 2]
        assert retained(times, NOW) == {0, 1, 3}

    def test_compacting_again_later_keeps_a_subset_of_what_was_kept(self) -> None:
        start = NOW - 10 * DAY
        times = [start + i * 120 for i in range(int(10 * DAY / 120))]  # every 2 min
        first = sorted(retained(times, NOW))
        survivors = [times[i] for i in first]
        again = retained(survivors, NOW)
        assert again == set(range(len(survivors)))  # a second run at once drops nothing
        later = sorted(first[i] for i in retained(survivors, NOW + 3 * DAY))
        assert set(later) < set(first)  # three days on, hours have become days
        # what that run keeps, it keeps again: hour buckets nest in day buckets
        assert retained([times[i] for i in later], NOW + 3 * DAY) == set(range(len(later)))


def age_checkpoints(attacker: Attacker, days: float = 2) -> None:
    """Make every stored checkpoint `days` old, all within one hour."""
    base = (time.time() - days * DAY) // HOUR * HOUR
    for rowid, in attacker.execute("SELECT id FROM checkpoints ORDER BY size, id"):
        attacker.execute("UPDATE checkpoints SET created=? WHERE id=?",
                         time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base)), rowid)
        base += 1


def journal_notes(data: DataDir) -> list[str]:
    raw = (data.journal / "default.checkpoints").read_bytes()
    return [n.decode() for n in raw.split(SEPARATOR) if n.strip()]


def compact(data: DataDir) -> str:
    res = CliRunner().invoke(cli, ["journal", "compact", "--data", str(data.root)])
    assert res.exit_code == 0, res.output
    return res.output


class TestCompactedLog:
    def test_aged_checkpoints_go_from_database_and_journal_and_the_log_verifies(
            self, data: DataDir, attacker: Attacker) -> None:
        assert len(journal_notes(data)) == 13
        age_checkpoints(attacker)
        out = compact(data)
        assert "default: 13 -> 2 checkpoints" in out
        rows = attacker.execute("SELECT size, note FROM checkpoints ORDER BY size")
        assert [r[0] for r in rows] == [0, 120]  # the first and the newest
        assert journal_notes(data) == [r[1] for r in rows]
        code, out = run_verify(data)
        assert code == 0, out
        assert "default: 120 entries, 2 checkpoints: ok" in out

    def test_the_retained_checkpoints_are_provably_consistent_with_each_other(
            self, data: DataDir, attacker: Attacker) -> None:
        base = (time.time() - 2 * DAY) // HOUR * HOUR
        rows = attacker.execute("SELECT id FROM checkpoints ORDER BY size")
        for i, (rowid,) in enumerate(rows):  # two checkpoints an hour
            when = base + (i // 2) * HOUR + i % 2
            attacker.execute("UPDATE checkpoints SET created=? WHERE id=?",
                             time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)), rowid)
        assert "default: 13 -> 8 checkpoints" in compact(data)
        kept = attacker.execute("SELECT size, root FROM checkpoints ORDER BY size")
        assert [k[0] for k in kept] == [0, 10, 30, 50, 70, 90, 110, 120]  # last of each hour
        n = open_node(data, with_index=False)
        try:
            for (a, ra), (b, rb) in itertools.pairwise(kept[1:]):  # size 0 needs no proof
                proof = n.logs.consistency_proof("default", a, b)
                merkle.verify_consistency(a, b, proof, bytes(ra), bytes(rb))
        finally:
            n.close()
        assert run_verify(data)[0] == 0

    def test_recent_checkpoints_are_left_alone(self, data: DataDir) -> None:
        before = (data.journal / "default.checkpoints").read_bytes()
        assert "default: 13 -> 13 checkpoints" in compact(data)
        assert (data.journal / "default.checkpoints").read_bytes() == before

    def test_a_rollback_is_still_refused_and_reported_after_compaction(
            self, data: DataDir, attacker: Attacker, tmp_path: Path) -> None:
        old = str(tmp_path / "old.db")
        backup(data, old)
        populate(data, commits=3)  # the journal moves past the copy
        age_checkpoints(attacker)
        compact(data)
        attacker.close()
        for suffix in ("", "-wal", "-shm"):
            (data.root / f"auditkeep.db{suffix}").unlink(missing_ok=True)
        shutil.copy(old, data.db)
        code, out = run_verify(data)
        assert code == 1
        assert "rolled-back: the checkpoint journal holds a signed checkpoint of size 150" in out
        with pytest.raises(ConfigError, match="rolled back"):
            open_node(data, with_index=False)

    def test_a_fork_between_journal_and_database_is_kept_on_both_sides(
            self, data: DataDir, attacker: Attacker) -> None:
        forked = sign_checkpoint(Checkpoint(ORIGIN, 60, b"\x42" * 32), real_signer(data))
        append_note(data.journal / "default.checkpoints", forked)
        age_checkpoints(attacker)
        out = compact(data)
        assert "default: 13 -> 3 checkpoints" in out
        assert [r[0] for r in attacker.execute("SELECT size FROM checkpoints ORDER BY size")] \
            == [0, 60, 120]
        assert forked in journal_notes(data)
        code, out = run_verify(data)
        assert code == 1
        assert "checkpoint size 60 forked-checkpoint: the journal and the database" in out

    def test_a_checkpoint_that_disagrees_with_the_stored_tree_is_kept(
            self, data: DataDir, attacker: Attacker) -> None:
        wrong = Checkpoint(ORIGIN, 55, b"\x42" * 32)
        attacker.execute("INSERT INTO checkpoints (log_id, size, root, note, created) "
                         "VALUES (?, 55, ?, ?, 'x')", attacker.log_id, wrong.root,
                         sign_checkpoint(wrong, real_signer(data)))
        age_checkpoints(attacker)
        out = compact(data)
        assert "kept 1 that do not check out" in out
        assert 55 in [r[0] for r in attacker.execute("SELECT size FROM checkpoints")]
        code, out = run_verify(data)
        assert code == 1
        assert "checkpoint size 55 checkpoint-mismatch" in out

    def test_a_forged_checkpoint_is_kept(self, data: DataDir, attacker: Attacker) -> None:
        note = attacker.execute("SELECT note FROM checkpoints WHERE size=60")[0][0]
        cp = Checkpoint.parse(note.split("\n\n")[0] + "\n")
        attacker.execute("UPDATE checkpoints SET note=? WHERE size=60",
                         sign_checkpoint(cp, Signer.generate(ORIGIN)))
        age_checkpoints(attacker)
        assert "kept 1 that do not check out" in compact(data)
        code, out = run_verify(data)
        assert code == 1
        assert "checkpoint size 60 forged-checkpoint" in out

    def test_the_server_compacts_at_start(self, data: DataDir, attacker: Attacker) -> None:
        age_checkpoints(attacker)
        n = open_node(data, with_index=False)
        n.start()
        try:
            deadline = time.monotonic() + 30
            while len(n.store.checkpoints(1)) > 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [c.size for c in n.store.checkpoints(1)] == [0, 120]
        finally:
            n.close()
        assert run_verify(data)[0] == 0


class TestJournalRewrite:
    def test_an_append_during_the_rewrite_is_kept(self, tmp_path: Path) -> None:
        path = tmp_path / "j.checkpoints"
        for i in range(5):
            append_note(path, f"note {i}\n")
        late: list[threading.Thread] = []

        def drop(note: bytes) -> bool:
            if note.startswith(b"note 0"):
                append_note(path, "appended in the filtering pass\n")
                # and one that waits for the lock the rename holds
                late.append(threading.Thread(target=append_note,
                                             args=(path, "appended while locked\n")))
                late[-1].start()
            return note.startswith((b"note 1", b"note 3"))

        assert rewrite_journal(path, drop) is not None
        for t in late:
            t.join(10)
        notes = [n.decode() for n in path.read_bytes().split(SEPARATOR) if n]
        assert notes[:3] == ["note 0\n", "note 2\n", "note 4\n"]
        assert sorted(notes[3:]) == ["appended in the filtering pass\n",
                                     "appended while locked\n"]

    def test_an_appender_that_waited_on_a_replaced_file_writes_to_the_new_one(
            self, tmp_path: Path) -> None:
        path = tmp_path / "j.checkpoints"
        append_note(path, "old\n")
        held = open(path, "rb")  # noqa: SIM115 -- closed mid-test: what a compaction holds
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        appender = threading.Thread(target=append_note, args=(path, "late\n"))
        appender.start()
        deadline = time.monotonic() + 10
        while _open_count(path) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # until the appender has the old file open and waits
        assert _open_count(path) == 2
        new = tmp_path / "new"
        new.write_bytes(b"compacted\n" + SEPARATOR)
        os.replace(new, path)
        held.close()
        appender.join(10)
        assert path.read_bytes() == b"compacted\n" + SEPARATOR + b"late\n" + SEPARATOR

    def test_a_torn_tail_is_carried_over_unchanged(self, tmp_path: Path) -> None:
        path = tmp_path / "j.checkpoints"
        path.write_bytes(b"a\n" + SEPARATOR + b"b\n" + SEPARATOR + b"half a no")
        assert rewrite_journal(path, lambda n: n.startswith(b"a")) == (17, 13)
        assert path.read_bytes() == b"b\n" + SEPARATOR + b"half a no"


def _open_count(path: Path) -> int:
    """How many of this process's file descriptors have `path`'s current file open."""
    ino = os.stat(path).st_ino
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.stat(f"/proc/self/fd/{fd}").st_ino == ino:
                count += 1
        except OSError:
            continue
    return count
