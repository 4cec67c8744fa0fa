"""Sealing ranges of a real SQLite log into a local archive, and verifying it offline:
byte-exact round trip, and each kind of tampering named by its check."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import msgspec
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from auditkeep.archive.manifest import archive_verifiers, manifest_key_name, parse_manifest
from auditkeep.archive.objects import Objects
from auditkeep.archive.reading import rehydrate
from auditkeep.archive.seal import Archiver
from auditkeep.archive.table import COMPRESSION, SCHEMA, read_columns, write_parquet
from auditkeep.archive.verify import verify_archive
from auditkeep.datadir import Node
from auditkeep.errors import NoteError
from auditkeep.log import merkle
from auditkeep.log.checkpoint import open_checkpoint
from auditkeep.log.keys import KeyRing
from auditkeep.log.note import open_note
from auditkeep.log.service import LogService
from auditkeep.pipeline.config import check_config, parse_config
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.schema import Event
from auditkeep.storage.base import Cosignature, Purge
from auditkeep.storage.memory import MemoryBackend
from tests.archive.conftest import TENANT, ev, ingest

PARQUET_0 = "acme/00000000000000000000-00000000000000000256.parquet"
MANIFEST_0 = "acme/00000000000000000000-00000000000000000256.manifest"


def vkeys(n: Node) -> list[str]:
    return [k.verifier(n.logs.origin(TENANT)).to_string() for k in n.keys.published()]


def checks(objects: Objects, n: Node) -> list[tuple[str, str, int | None]]:
    return [(p.name, p.check, p.seq) for p in verify_archive(objects, vkeys(n)).problems]


class TestSeal:
    def test_round_trip_is_byte_exact(self, filled: Node, archiver: Archiver,
                                      objects: Objects) -> None:
        report = archiver.run()
        assert [(r.first, r.end) for r in report.sealed] == [(0, 256), (256, 512)]
        info = filled.logs.info(TENANT)
        assert [(r.first, r.end) for r in filled.store.archives(info.id)] == [(0, 256),
                                                                                (256, 512)]
        table = read_columns(objects.get(PARQUET_0), ("seq", "entry", "leaf", "actor_id"))
        assert table.column("seq").to_pylist() == list(range(256))
        hot = [filled.logs.entry(TENANT, s) for s in range(256)]
        assert table.column("entry").to_pylist() == hot
        assert table.column("leaf").to_pylist() == merkle.leaf_hashes(hot)
        assert table.column("actor_id").to_pylist()[:6] == [f"user-{i % 5}" for i in range(6)]
        assert pq.ParquetFile(pa.BufferReader(objects.get(PARQUET_0))).metadata.row_group(
            0).column(0).compression == "ZSTD"
        assert archiver.run().sealed == []  # nothing due twice

    def test_personal_values_are_not_in_the_archive(self, archiver: Archiver,
                                                    objects: Objects) -> None:
        archiver.run()
        data = objects.get(PARQUET_0)
        table = read_columns(data, tuple(SCHEMA.names))
        assert b"u1@example.org" not in b"".join(table.column("entry").to_pylist())
        assert b'"$c"' in table.column("entry").to_pylist()[1]

    def test_manifest_is_signed_as_archive_not_as_checkpoint(
            self, filled: Node, archiver: Archiver, objects: Objects) -> None:
        archiver.run()
        note = objects.get(MANIFEST_0)
        m, _ = parse_manifest(note)
        assert (m.first, m.end, m.width, m.rows) == (0, 256, 256, 256)
        assert m.sha256 == hashlib.sha256(objects.get(PARQUET_0)).hexdigest()
        log_keys = [k.verifier(m.origin) for k in filled.keys.published()]
        with pytest.raises(NoteError, match="no verifiable signatures"):
            open_note(note, log_keys)  # the log's key name does not open a manifest
        opened = open_note(note, archive_verifiers(vkeys(filled)))
        assert opened.verified[0].name == manifest_key_name(m.origin)
        with pytest.raises(NoteError):
            open_checkpoint(note, archive_verifiers(vkeys(filled)))
        cp, _ = open_checkpoint(m.checkpoint, log_keys, m.origin)
        assert cp.size >= m.end

    def test_a_range_with_purged_entries_is_skipped(self, filled: Node,
                                                    archiver: Archiver) -> None:
        info = filled.logs.info(TENANT)
        filled.store.purge(Purge(info.id, [300, 301], record_seq=599))
        report = archiver.run()
        assert [(r.first, r.end) for r in report.sealed] == [(0, 256)]
        assert report.skipped == [(TENANT, 256, 512, "purged before it was archived")]

    def test_a_new_width_never_seals_an_archived_seq_again(self, filled: Node,
                                                           objects: Objects) -> None:
        Archiver(filled.logs, objects, 512).run()
        sealed = Archiver(filled.logs, objects, 256).run().sealed
        assert sealed == []  # [0, 256) and [256, 512) are inside [0, 512)

    def test_ranges_wait_for_a_persisted_checkpoint(self, filled: Node,
                                                    objects: Objects) -> None:
        assert Archiver(filled.logs, objects, 1024).run().sealed == []
        ingest(filled, [ev(i) for i in range(600, 1100)])
        assert [(r.first, r.end) for r in Archiver(filled.logs, objects, 1024).run().sealed] \
            == [(0, 1024)]


class TestVerify:
    def test_an_untouched_archive_verifies_with_and_without_keys(
            self, filled: Node, archiver: Archiver, objects: Objects) -> None:
        archiver.run()
        given = verify_archive(objects, vkeys(filled), hot=filled.store)
        assert given.ok and not given.embedded_keys
        assert [(r.log, r.first, r.rows) for r in given.ranges] == [(TENANT, 0, 256),
                                                                     (TENANT, 256, 256)]
        embedded = verify_archive(objects)
        assert embedded.ok and embedded.embedded_keys

    def test_a_flipped_byte_in_the_parquet_file(self, filled: Node, archiver: Archiver,
                                                objects: Objects) -> None:
        archiver.run()
        data = bytearray(objects.get(PARQUET_0))
        data[len(data) // 2] ^= 0x01
        objects.put(PARQUET_0, bytes(data))
        found = checks(objects, filled)
        assert (PARQUET_0, "sha256", None) in found
        assert all(name == PARQUET_0 for name, _, _ in found)

    def test_an_edited_manifest(self, filled: Node, archiver: Archiver,
                                objects: Objects) -> None:
        archiver.run()
        note = objects.get(MANIFEST_0).decode()
        objects.put(MANIFEST_0, note.replace('"rows":256', '"rows":255').encode())
        assert checks(objects, filled)[0] == (MANIFEST_0, "signature", None)

    def test_another_key_does_not_verify(self, filled: Node, archiver: Archiver,
                                         objects: Objects) -> None:
        archiver.run()
        filled.keys.rotate()
        stranger = [k.verifier(filled.logs.origin(TENANT)).to_string()
                    for k in filled.keys.published() if k.active]
        found = {(p.name, p.check) for p in verify_archive(objects, stranger).problems}
        assert (MANIFEST_0, "signature") in found and (MANIFEST_0, "checkpoint") in found

    def test_an_entry_changed_with_its_leaf_is_caught_by_the_subtree(
            self, filled: Node, archiver: Archiver, objects: Objects) -> None:
        archiver.run()
        table = pq.read_table(pa.BufferReader(objects.get(PARQUET_0)))
        entries = table.column("entry").to_pylist()
        rec = orjson.loads(entries[7])
        rec["outcome"] = "failure"
        entries[7] = orjson.dumps(rec, option=orjson.OPT_SORT_KEYS)
        leaves = table.column("leaf").to_pylist()
        leaves[7] = merkle.leaf_hash(entries[7])
        forged = table.set_column(table.schema.get_field_index("entry"), "entry",
                                  pa.array(entries, pa.binary()))
        forged = forged.set_column(forged.schema.get_field_index("leaf"), "leaf",
                                   pa.array(leaves, pa.binary(32)))
        objects.put(PARQUET_0, write_parquet(forged))
        found = checks(objects, filled)
        assert (PARQUET_0, "subtree", None) in found
        assert not any(check == "leaf" for _, check, _ in found)  # each row is consistent

    def test_an_entry_changed_without_its_leaf_names_the_seq(
            self, filled: Node, archiver: Archiver, objects: Objects) -> None:
        archiver.run()
        table = pq.read_table(pa.BufferReader(objects.get(PARQUET_0)))
        entries = table.column("entry").to_pylist()
        entries[42] = entries[42].replace(b"orders.", b"orderz.")
        forged = table.set_column(table.schema.get_field_index("entry"), "entry",
                                  pa.array(entries, pa.binary()))
        pq.write_table(forged, sink := pa.BufferOutputStream(), compression=COMPRESSION)
        objects.put(PARQUET_0, sink.getvalue().to_pybytes())
        assert (PARQUET_0, "leaf", 42) in checks(objects, filled)

    def test_a_missing_file(self, filled: Node, archiver: Archiver, objects: Objects) -> None:
        archiver.run()
        Path(objects.url, PARQUET_0).unlink()
        assert checks(objects, filled)[0][:2] == (PARQUET_0, "file")


class TestConfig:
    def test_archive_section(self) -> None:
        cfg = parse_config("archive: {url: s3://bucket/auditkeep, range: 4096, schedule: 10m,"
                           " endpoint: 'http://127.0.0.1:9000', allow_http: true}")
        assert cfg.archive is not None
        assert (cfg.archive.url, cfg.archive.range, cfg.archive.schedule) == (
            "s3://bucket/auditkeep", 4096, 600.0)
        assert cfg.archive.store_options() == {"endpoint": "http://127.0.0.1:9000",
                                               "allow_http": True}
        assert parse_config("archive: {url: /srv/archive}").archive.range == 65_536  # type: ignore[union-attr]

    def test_every_problem_is_named(self) -> None:
        problems = check_config("archive: {range: 1000, schedule: soon, colour: red}")
        assert {p.pointer for p in problems} == {"/archive/url", "/archive/range",
                                                 "/archive/schedule", "/archive/colour"}


def test_the_memory_backend_seals_verifies_and_rehydrates_alike(objects: Objects) -> None:
    store = MemoryBackend()
    keys = KeyRing(store, None)
    keys.ensure()
    logs = LogService(store, keys, sequencer_options={"checkpoint_interval": 0.0})
    try:
        decoded = msgspec.convert([ev(i) for i in range(300)], list[Event])
        logs.append(TENANT, prepare(decoded, tenant=TENANT, submitter="test",
                                    may_set_tenant=False)).result()
        assert [(r.first, r.end) for r in Archiver(logs, objects, 256).run().sealed] == [
            (0, 256)]
        vk = [k.verifier(logs.origin(TENANT)).to_string() for k in keys.published()]
        assert verify_archive(objects, vk, hot=store).ok
        info = logs.info(TENANT)
        before = [logs.entry(TENANT, s) for s in range(256)]
        store.purge(Purge(info.id, list(range(256)), record_seq=299))
        logs.forget_bundles(info.id)
        assert rehydrate(logs, objects, TENANT, 0, 256).restored == 256
        assert [logs.entry(TENANT, s) for s in range(256)] == before
    finally:
        logs.close()


def test_the_manifest_carries_the_cosigned_checkpoint(filled: Node, archiver: Archiver,
                                                      objects: Objects) -> None:
    info = filled.logs.info(TENANT)
    cp = filled.store.latest_checkpoint(info.id)
    assert cp is not None
    line = "— witness.example " + base64.b64encode(bytes(68)).decode() + "\n"
    filled.store.put_cosignature(Cosignature(info.id, cp.size, cp.root, "witness.example",
                                             line, "2026-12-07T00:00:00Z"))
    archiver.run()
    m, _ = parse_manifest(objects.get(MANIFEST_0))
    assert m.checkpoint == cp.note + line
    assert verify_archive(objects, vkeys(filled)).ok  # a witness key it does not know
