"""The file follower: partial lines, rename + create, copytruncate, restarts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from auditkeep.agent.tail import Follower, Line, OffsetStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def drain(f: Follower, commit: bool = True) -> list[bytes]:
    """Every line available now (committing each)."""
    out: list[bytes] = []
    while lines := f.poll(64):  # small reads: exercise the chunking too
        for line in lines:
            out.append(line.data)
            if commit:
                f.commit(line)
    return out


def append(path: Path, *lines: str, end: str = "\n") -> None:
    with open(path, "ab") as fh:
        fh.write("".join(x + end for x in lines).encode())


@pytest.fixture
def clock() -> Clock:
    return Clock()


class TestLines:
    def test_a_partial_last_line_waits_for_its_newline(self, tmp_path: Path) -> None:
        p = tmp_path / "a.log"
        p.write_bytes(b'{"n":1}\n{"n":')
        f = Follower(p)
        assert drain(f) == [b'{"n":1}']
        assert drain(f) == []
        append(p, "2}")
        assert drain(f) == [b'{"n":2}']

    def test_lines_are_given_again_until_committed(self, tmp_path: Path) -> None:
        p = tmp_path / "a.log"
        append(p, "one", "two", "three")
        f = Follower(p)
        first = f.poll()
        assert [x.data for x in first] == [b"one", b"two", b"three"]
        f.commit(first[0])
        assert [x.data for x in f.poll()] == [b"two", b"three"]
        assert [x.number for x in f.poll()] == [2, 3]

    def test_crlf_and_blank_lines(self, tmp_path: Path) -> None:
        p = tmp_path / "a.log"
        p.write_bytes(b"a\r\n\nb\n")
        assert drain(Follower(p)) == [b"a", b"", b"b"]

    def test_a_file_that_does_not_exist_yet(self, tmp_path: Path) -> None:
        p = tmp_path / "later.log"
        f = Follower(p)
        assert drain(f) == []
        append(p, "x")
        assert drain(f) == [b"x"]

    def test_an_overlong_line_is_skipped_and_flagged(self, tmp_path: Path) -> None:
        p = tmp_path / "a.log"
        p.write_bytes(b"a\n" + b"x" * 5000 + b"\nb\n")
        f = Follower(p, max_line_bytes=1024)
        got: list[Line] = []
        while lines := f.poll(100):
            for line in lines:
                got.append(line)
                f.commit(line)
        assert [(x.data[:3], x.overlong, x.number) for x in got] == [
            (b"a", False, 1), (b"xxx", True, 2), (b"b", False, 3)]

    def test_start_at_end_skips_what_is_there(self, tmp_path: Path) -> None:
        p = tmp_path / "a.log"
        append(p, "old1", "old2")
        f = Follower(p, start_at="end")
        assert drain(f) == []
        append(p, "new")
        assert drain(f) == [b"new"]


class TestRenameAndCreate:
    def test_the_old_file_is_finished_before_the_new_one(self, tmp_path: Path,
                                                         clock: Clock) -> None:
        p = tmp_path / "audit.log"
        append(p, "a1", "a2")
        f = Follower(p, rotate_wait=5, clock=clock)
        assert drain(f) == [b"a1", b"a2"]
        with open(p, "ab") as writer:  # the writer keeps its descriptor across the rename
            writer.write(b"a3\n")
            os.rename(p, tmp_path / "audit.log.1")
            append(p, "b1")  # the new file
            writer.write(b"a4\n")  # written late to the old file, before the writer reopens
        assert drain(f) == [b"a3", b"a4", b"b1"]
        append(tmp_path / "audit.log.1", "a5")  # still within rotate_wait
        append(p, "b2")
        assert drain(f) == [b"a5", b"b2"]
        clock.now += 6
        assert drain(f) == []  # quiet for rotate_wait: the old file is let go
        append(tmp_path / "audit.log.1", "a6")  # too late
        assert drain(f) == []
        append(p, "b3")
        assert drain(f) == [b"b3"]
        assert f.rotations == 1 and f.status()["rotated_open"] == 0

    def test_the_unterminated_end_of_a_rotated_file_is_its_last_line(
            self, tmp_path: Path, clock: Clock) -> None:
        p = tmp_path / "audit.log"
        append(p, "a1")
        f = Follower(p, rotate_wait=1, clock=clock)
        assert drain(f) == [b"a1"]
        with open(p, "ab") as w:
            w.write(b'{"torn":')
        os.rename(p, tmp_path / "audit.log.1")
        append(p, "b1")
        assert drain(f) == [b"b1"]  # the partial line waits: its writer may finish it
        clock.now += 2
        assert drain(f) == [b'{"torn":']
        assert drain(f) == []

    def test_many_rotations_while_writing(self, tmp_path: Path, clock: Clock) -> None:
        p = tmp_path / "audit.log"
        f = Follower(p, rotate_wait=0.5, clock=clock)
        written: list[bytes] = []
        got: list[bytes] = []
        for gen in range(20):
            for i in range(7):
                line = f"g{gen}-{i}"
                append(p, line)
                written.append(line.encode())
                if i % 3 == 0:
                    got += drain(f)
            os.rename(p, tmp_path / f"audit.log.{gen}")
            clock.now += 0.3
        got += drain(f)
        clock.now += 1
        got += drain(f)
        assert got == written

    def test_a_deleted_file_is_let_go_and_its_successor_read_from_the_start(
            self, tmp_path: Path, clock: Clock) -> None:
        p = tmp_path / "audit.log"
        append(p, "a1")
        f = Follower(p, rotate_wait=1, clock=clock)
        assert drain(f) == [b"a1"]
        p.unlink()
        assert drain(f) == []
        clock.now += 2
        assert drain(f) == []
        assert f.status()["offset"] is None  # nothing open
        append(p, "b1")
        assert drain(f) == [b"b1"]


class TestCopyTruncate:
    def test_a_truncated_file_is_read_again_from_the_start(self, tmp_path: Path) -> None:
        p = tmp_path / "app.log"
        append(p, "line-1", "line-2", "line-3")
        f = Follower(p)
        assert drain(f) == [b"line-1", b"line-2", b"line-3"]
        shutil.copy(p, tmp_path / "app.log.1")
        with open(p, "r+b") as fh:
            fh.truncate(0)
        append(p, "n1")
        assert drain(f) == [b"n1"]
        assert f.truncations == 1

    def test_a_truncation_refilled_past_the_offset_is_caught_by_the_fingerprint(
            self, tmp_path: Path) -> None:
        p = tmp_path / "app.log"
        append(p, "a1", "a2")
        f = Follower(p)
        assert drain(f) == [b"a1", b"a2"]
        with open(p, "r+b") as fh:
            fh.truncate(0)
        append(p, "new-1", "new-2", "new-3")  # longer than what was read before
        assert drain(f) == [b"new-1", b"new-2", b"new-3"]
        assert f.truncations == 1

    def test_holes_left_for_a_non_append_writer_are_dropped(self, tmp_path: Path) -> None:
        p = tmp_path / "app.log"
        append(p, "a1", "a2")
        f = Follower(p)
        assert drain(f) == [b"a1", b"a2"]
        with open(p, "r+b") as fh:
            fh.truncate(0)
            fh.seek(6)  # the writer's old position
            fh.write(b"b1\n")
        assert drain(f) == [b"b1"]


class TestRestart:
    def save(self, f: Follower, store: OffsetStore) -> None:
        store.save({f.path: f.record()})

    def restore(self, p: Path, store: OffsetStore, **kw: Any) -> Follower:
        return Follower(p, store.load().get(str(p)), **kw)

    def test_offsets_survive_a_restart(self, tmp_path: Path) -> None:
        p = tmp_path / "a.log"
        store = OffsetStore(tmp_path / "offsets.json")
        append(p, *(f"l{i}" for i in range(300)))  # more than the fingerprint's 1 KiB
        f = Follower(p)
        lines = f.poll(1 << 20)
        for line in lines[:250]:
            f.commit(line)
        self.save(f, store)
        f.close()
        saved = orjson.loads((tmp_path / "offsets.json").read_bytes())[str(p)]
        assert set(saved) == {"dev", "inode", "offset", "fingerprint", "lines"}
        assert saved["offset"] == sum(len(f"l{i}") + 1 for i in range(250))
        g = self.restore(p, store, start_at="end")  # start_at only applies to new files
        got = g.poll(1 << 20)
        assert [x.data for x in got] == [f"l{i}".encode() for i in range(250, 300)]
        assert got[0].number == 251

    def test_a_rotation_while_stopped_finishes_the_old_file(self, tmp_path: Path,
                                                           clock: Clock) -> None:
        p = tmp_path / "a.log"
        store = OffsetStore(tmp_path / "offsets.json")
        append(p, "a1", "a2")
        f = Follower(p)
        assert drain(f) == [b"a1", b"a2"]
        self.save(f, store)
        f.close()
        append(p, "a3")  # written after the agent stopped...
        os.rename(p, tmp_path / "a.log.1")  # ...then rotated away
        append(p, "b1")
        g = self.restore(p, store, rotate_wait=1, clock=clock)
        assert drain(g) == [b"a3", b"b1"]
        clock.now += 2
        assert drain(g) == []
        assert g.status()["rotated_open"] == 0

    def test_a_rotation_while_draining_survives_a_restart(self, tmp_path: Path,
                                                          clock: Clock) -> None:
        p = tmp_path / "a.log"
        store = OffsetStore(tmp_path / "offsets.json")
        append(p, "a1", "a2")
        f = Follower(p, rotate_wait=10, clock=clock)
        assert drain(f) == [b"a1", b"a2"]
        os.rename(p, tmp_path / "a.log.1")
        append(p, "b1")
        assert drain(f) == [b"b1"]
        self.save(f, store)  # the old file is still open, being drained
        assert len(store.load()[str(p)]["rotated"]) == 1
        f.close()
        append(tmp_path / "a.log.1", "a3")
        append(p, "b2")
        g = self.restore(p, store, rotate_wait=10, clock=clock)
        assert drain(g) == [b"a3", b"b2"]

    def test_a_file_replaced_while_stopped_is_read_from_the_start(self, tmp_path: Path) -> None:
        p = tmp_path / "a.log"
        store = OffsetStore(tmp_path / "offsets.json")
        append(p, "a1", "a2")
        f = Follower(p)
        assert drain(f) == [b"a1", b"a2"]
        self.save(f, store)
        f.close()
        with open(p, "r+b") as fh:  # same inode, other content (copytruncate while stopped)
            fh.truncate(0)
        append(p, "b1", "b2", "b3")
        g = self.restore(p, store)
        assert drain(g) == [b"b1", b"b2", b"b3"]
        assert g.truncations == 1

    def test_an_unreadable_offsets_file_means_from_the_start(self, tmp_path: Path) -> None:
        path = tmp_path / "offsets.json"
        path.write_text("{not json")
        assert OffsetStore(path).load() == {}
        OffsetStore(path).save({"/x": {"offset": 1}})
        assert OffsetStore(path).load() == {"/x": {"offset": 1}}
        assert not (tmp_path / "offsets.json.tmp").exists()
