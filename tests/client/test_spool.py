"""The disk spool on real files: order, restart, rotation, corruption, orphans."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from auditkeep.client import spool as spool_mod
from auditkeep.client.spool import HEADER, DiskSpool, MemorySpool, adopt_orphans, open_spools


def payloads(n: int, start: int = 0) -> list[bytes]:
    return [b'{"n":%d,"pad":"%s"}' % (i, b"x" * (i % 50)) for i in range(start, start + n)]


def drain(s: DiskSpool | MemorySpool, batch: int = 7) -> list[bytes]:
    out: list[bytes] = []
    while True:
        got, cur = s.read(batch, 1 << 20)
        if not got:
            return out
        s.ack(cur, len(got), sum(len(p) for p in got))
        out += got


def reopen(directory: Path) -> DiskSpool:
    """The spool of a dead owner, as the next process adopts it."""
    (found,) = adopt_orphans(directory.parent, set())
    return found


class TestDiskSpool:
    def test_reads_back_in_order_and_frees_acknowledged_segments(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(spool_mod, "SEGMENT_BYTES", 300)
        own, orphans = open_spools(tmp_path)
        assert orphans == []
        sent = payloads(100)
        for p in sent:
            own.append(p)
        assert len(list(own.directory.glob("seg-*.log"))) > 5  # it rotated
        assert drain(own) == sent
        assert own.drained()
        assert len(list(own.directory.glob("seg-*.log"))) == 1  # only the active one
        assert own.pending_bytes == 0

    def test_unacknowledged_records_survive_the_owner(self, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(spool_mod, "SEGMENT_BYTES", 500)
        own, _ = open_spools(tmp_path)
        sent = payloads(60)
        for p in sent:
            own.append(p)
        got, cur = own.read(25, 1 << 20)
        own.ack(cur, len(got), sum(len(p) for p in got))
        own.read(10, 1 << 20)  # read but never acknowledged: the owner "dies"
        own.close()
        heir = reopen(own.directory)
        assert drain(heir) == sent[25:]  # exactly the unacknowledged ones, in order
        assert heir.drained()
        heir.remove()
        assert not own.directory.exists()

    def test_a_live_owner_keeps_its_spool(self, tmp_path: Path) -> None:
        own, _ = open_spools(tmp_path)
        own.append(b"{}")
        assert adopt_orphans(tmp_path, set()) == []  # its lock is held
        second, orphans = open_spools(tmp_path)
        assert orphans == [] and second.directory != own.directory

    def test_a_torn_tail_is_skipped_and_reported(self, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
        own, _ = open_spools(tmp_path)
        sent = payloads(10)
        for p in sent:
            own.append(p)
        own.close()
        (seg,) = own.directory.glob("seg-*.log")
        with open(seg, "r+b") as f:  # a crash in the middle of the last write
            f.truncate(seg.stat().st_size - 5)
        heir = reopen(own.directory)
        with caplog.at_level(logging.WARNING):
            assert drain(heir) == sent[:-1]
        assert heir.corruption.records == 1
        assert "corrupt" in caplog.text and seg.name in caplog.text

    def test_garbled_bytes_in_the_middle_lose_only_the_damaged_record(
            self, tmp_path: Path) -> None:
        own, _ = open_spools(tmp_path)
        sent = payloads(10)
        for p in sent:
            own.append(p)
        own.close()
        (seg,) = own.directory.glob("seg-*.log")
        data = bytearray(seg.read_bytes())
        third = sum(HEADER.size + len(p) for p in sent[:3])
        data[third + HEADER.size + 2] ^= 0xFF  # flip a byte inside record 3's payload
        data[HEADER.size + 1: HEADER.size + 4] = b"\x00\x00\x00"  # and inside record 0
        seg.write_bytes(bytes(data))
        heir = reopen(own.directory)
        assert drain(heir) == [p for i, p in enumerate(sent) if i not in (0, 3)]
        assert heir.corruption.records == 2

    def test_garbage_appended_after_records(self, tmp_path: Path) -> None:
        own, _ = open_spools(tmp_path)
        sent = payloads(5)
        for p in sent:
            own.append(p)
        own.close()
        (seg,) = own.directory.glob("seg-*.log")
        with open(seg, "ab") as f:
            f.write(os.urandom(4000))
        heir = reopen(own.directory)
        assert drain(heir) == sent
        assert heir.corruption.records >= 1

    def test_an_unreadable_ledger_resends_rather_than_loses(self, tmp_path: Path) -> None:
        own, _ = open_spools(tmp_path)
        sent = payloads(5)
        for p in sent:
            own.append(p)
        got, cur = own.read(3, 1 << 20)
        own.ack(cur, 3, sum(len(p) for p in got))
        own.close()
        (own.directory / "ledger").write_text("garbage")
        heir = reopen(own.directory)
        assert drain(heir) == sent  # duplicates are the server's to drop; nothing is lost

    def test_a_large_spool_is_read_in_bounded_chunks(self, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(spool_mod, "SEGMENT_BYTES", 4 << 20)
        own, _ = open_spools(tmp_path)
        sent = [b'{"n":%d,"pad":"%s"}' % (i, b"y" * 3000) for i in range(1500)]
        for p in sent:
            own.append(p)
        own.close()
        heir = reopen(own.directory)
        assert drain(heir, batch=500) == sent
        assert heir.corruption.records == 0


class TestMemorySpool:
    def test_reads_acks_and_discards(self) -> None:
        m = MemorySpool()
        sent = payloads(20)
        for p in sent:
            m.append(p)
        got, cur = m.read(5, 1 << 20)
        assert got == sent[:5]
        m.ack(cur, 5, sum(len(p) for p in got))
        assert m.discard() == 15
        assert m.read(5, 1 << 20)[0] == []
        assert m.drained()
