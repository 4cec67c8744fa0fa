"""The bulk verifier against the entry-by-entry one it replaced, on logs spanning many
tiles, bundles, read windows and hashing chunks, untouched and tampered with."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from auditkeep.datadir import DataDir, open_node
from auditkeep.log import verify
from auditkeep.log.keys import KeyRing
from auditkeep.pipeline.prepare import prepare
from auditkeep.pipeline.validate import decode_events
from tests.log import reference_verify
from tests.log.tamper import Attacker

SIZES = [1, 255, 2, 300, 7, 256, 129, 450]  # events per commit: 1,400 entries


def build(data: DataDir) -> None:
    n = open_node(data, with_index=False, sequencer_options={"checkpoint_interval": 0.0})
    try:
        start = 0
        for count in SIZES:
            events = [{"action": "orders.delete", "outcome": "success",
                       "actor": {"id": f"u{i}", "type": "user", "email": f"u{i}@x.io"},
                       "resource": {"type": "order", "id": str(i)}}
                      for i in range(start, start + count)]
            raws = [("test.raw", b"original %d" % i) if i % 97 == 3 else None
                    for i in range(start, start + count)]
            pendings = prepare(decode_events(orjson.dumps(events), ndjson=False),
                               tenant="default", submitter="tok_test", may_set_tenant=False,
                               raws=raws)
            n.logs.append("default", pendings).result(10)
            start += count
    finally:
        n.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    d = DataDir(tmp_path_factory.mktemp("bulk") / "data")
    build(d)
    return d


@pytest.fixture
def data(built: DataDir, tmp_path: pytest.TempPathFactory) -> DataDir:
    import shutil

    d = DataDir(tmp_path / "data")  # type: ignore[operator]
    shutil.copytree(built.root, d.root)
    return d


@pytest.fixture(params=[(64, 16_384), (3, 100), (1, 37)], ids=["default", "small", "tiny"])
def windows(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read windows (bundles) and hashing chunks (entries) small enough to cross
    every kind of boundary in a 1,400-entry log."""
    window, chunk = request.param
    monkeypatch.setattr(verify, "_WINDOW", window)
    monkeypatch.setattr(reference_verify, "_WINDOW", window)
    monkeypatch.setattr(verify, "_CHUNK", chunk)


def both(data: DataDir) -> tuple[list[str], list[str]]:
    store = data.open_backend()
    try:
        info = store.get_log("default")
        assert info is not None
        verifiers = [k.verifier(info.origin) for k in KeyRing(store, data.keys).published()]
        journal = [n.decode() for n in (data.journal / "default.checkpoints").read_bytes()
                   .split(b"\x00\n") if n.strip()]
        new = verify.verify_log(store, info, verifiers, journal)
        old = reference_verify.verify_log(store, info, verifiers, journal)
        assert (new.entries, new.checkpoints) == (old.entries, old.checkpoints)
        return sorted(map(str, new.findings)), sorted(map(str, old.findings))
    finally:
        store.close()


def _edit(seq: int) -> Callable[[Attacker], None]:
    def edit(a: Attacker) -> None:
        a.edit_entry(seq, b'"orders.delete"', b'"orders.deletf"')
    return edit


def _swap(i: int, j: int) -> Callable[[Attacker], None]:
    def swap(a: Attacker) -> None:
        (r1, _, _), (r2, _, _) = a.bundles()[i], a.bundles()[j]
        e1, e2 = a.entries(r1), a.entries(r2)
        a.write_entries(r1, e2)
        a.write_entries(r2, e1)
    return swap


def _swap_full_bundles(a: Attacker) -> None:
    full = [i for i, (_, _, count) in enumerate(a.bundles()) if count == 256]
    _swap(full[0], full[-1])(a)


def _delete_bundle(i: int) -> Callable[[Attacker], None]:
    def delete(a: Attacker) -> None:
        a.execute("DELETE FROM bundles WHERE id=?", a.bundles()[i][0])
    return delete


def _flip_node(level: int, idx: int, node: int) -> Callable[[Attacker], None]:
    def flip(a: Attacker) -> None:
        (blob,) = a.execute("SELECT hashes FROM tiles WHERE level=? AND idx=?", level, idx)[0]
        b = bytearray(blob)
        b[node * 32] ^= 1
        a.execute("UPDATE tiles SET hashes=? WHERE level=? AND idx=?", bytes(b), level, idx)
    return flip


def _raw(change: str) -> Callable[[Attacker], None]:
    def raw(a: Attacker) -> None:
        if change == "delete":
            a.execute("DELETE FROM raws WHERE seq=?", 100)
        else:
            from auditkeep.storage.codec import pack_blob

            a.execute("UPDATE raws SET data=? WHERE seq=?", pack_blob(b"forged"), 391)
    return raw


def _rewrite_seq(a: Attacker) -> None:
    a.edit_entry(700, b'"seq":700', b'"seq":7000')


def _cut_tiles(a: Attacker) -> None:
    a.execute("UPDATE tiles SET hashes=substr(hashes, 1, 64) WHERE level=0 AND idx=4")


TAMPERINGS: dict[str, Callable[[Attacker], None] | None] = {
    "untouched": None,
    "edit at a tile boundary": _edit(256),
    "edit in the last entry": _edit(1399),
    "edits in two tiles": lambda a: (_edit(3)(a), _edit(1024)(a)),
    "swapped bundles": _swap(2, 5),
    "swapped bundles of one size": _swap_full_bundles,
    "deleted bundle": _delete_bundle(4),
    "deleted last bundle": _delete_bundle(-1),
    "upper node": _flip_node(3, 0, 20),
    "two upper nodes of one tile": lambda a: (_flip_node(1, 1, 3)(a), _flip_node(1, 1, 9)(a)),
    "truncated tile": _cut_tiles,
    "raw deleted": _raw("delete"),
    "raw modified": _raw("modify"),
    "seq rewritten": _rewrite_seq,
}


@pytest.mark.usefixtures("windows")
@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_bulk_and_entry_by_entry_verifiers_agree(data: DataDir, name: str) -> None:
    tamper = TAMPERINGS[name]
    if tamper is not None:
        a = Attacker(data)
        try:
            tamper(a)
        finally:
            a.close()
    new, old = both(data)
    assert new == old
    assert bool(new) == (tamper is not None), new


def test_the_log_has_what_the_tamperings_assume(built: DataDir) -> None:
    a = Attacker(built)
    try:
        assert sum(c for _, _, c in a.bundles()) == sum(SIZES)
        assert {s for (s,) in a.execute("SELECT seq FROM raws")} >= {100, 391}
        assert len(a.execute("SELECT 1 FROM checkpoints")) >= len(SIZES)
    finally:
        a.close()




def test_misplaced_entries_are_named_with_the_seq_they_hold() -> None:
    entries = [b'{"a":1,"seq":%d,"v":1}' % i for i in range(10, 20)]
    entries[1] = b'{"seq":11}'  # last key: no comma after the digits
    entries[3] = b'{"seq":99,"v":1}'
    entries[5] = b'{"m":{"seq":15},"seq":150,"v":1}'  # the last "seq" is the record's
    entries[7] = b'{"v":1}'
    assert verify._misplaced(10, entries) == [(13, 99), (15, 150), (17, None)]
    assert verify._misplaced(0, []) == []
