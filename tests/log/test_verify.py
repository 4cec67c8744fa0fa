"""Tampering with a data directory by hand, each caught by `verify` with the right place named."""

from __future__ import annotations

from click.testing import CliRunner

from auditkeep.cli.main import cli
from auditkeep.datadir import DataDir
from auditkeep.log.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from auditkeep.log.note import Signer
from tests.log.tamper import Attacker

ORIGIN = "auditkeep.local/default"


def run_verify(data: DataDir) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["verify", "--data", str(data.root)])
    return res.exit_code, res.output


def real_signer(data: DataDir) -> Signer:
    (key_file,) = data.keys.glob("*.key")
    return Signer.parse(key_file.read_text().strip()).with_name(ORIGIN)


class TestIntact:
    def test_an_untouched_log_verifies(self, data: DataDir) -> None:
        code, out = run_verify(data)
        assert code == 0, out
        assert "default: 120 entries" in out
        assert "TAMPERED" not in out


class TestTampering:
    def test_one_edited_byte_in_a_record_names_its_seq(self, data: DataDir,
                                                       attacker: Attacker) -> None:
        attacker.edit_entry(57, b'"orders.delete"', b'"orders.deletf"')
        code, out = run_verify(data)
        assert code == 1
        assert "seq 57 modified" in out
        assert out.count("modified") == 1

    def test_a_raw_byte_flip_in_a_bundle_is_reported_as_corrupt(
            self, data: DataDir, attacker: Attacker) -> None:
        rowid, first, count = attacker.bundles()[3]
        blob = bytearray(attacker.execute("SELECT entries FROM bundles WHERE id=?", rowid)[0][0])
        blob[len(blob) // 2] ^= 0x01
        attacker.execute("UPDATE bundles SET entries=? WHERE id=?", bytes(blob), rowid)
        code, out = run_verify(data)
        assert code == 1
        # Either the bundle no longer decompresses, or it does and an entry changed.
        named = [f"seq {s} " for s in range(first, first + count)]
        assert any(n + "modified" in out or n + "corrupt" in out for n in named), out

    def test_a_deleted_row_names_the_missing_seqs(self, data: DataDir,
                                                  attacker: Attacker) -> None:
        rowid, first, count = attacker.bundles()[5]
        attacker.execute("DELETE FROM bundles WHERE id=?", rowid)
        code, out = run_verify(data)
        assert code == 1
        assert f"seq {first} deleted: entries {first}..{first + count - 1} are missing" in out

    def test_swapped_rows_are_reported_as_reordered(self, data: DataDir,
                                                    attacker: Attacker) -> None:
        (r1, f1, _), (r2, f2, _) = attacker.bundles()[2], attacker.bundles()[7]
        e1, e2 = attacker.entries(r1), attacker.entries(r2)
        attacker.write_entries(r1, e2)
        attacker.write_entries(r2, e1)
        code, out = run_verify(data)
        assert code == 1
        assert f"seq {f1} reordered: position {f1} holds an entry for seq {f2}" in out
        assert f"seq {f2} reordered: position {f2} holds an entry for seq {f1}" in out

    def test_a_forged_row_beyond_the_end_is_reported_as_inserted(
            self, data: DataDir, attacker: Attacker) -> None:
        rowid, _first, _count = attacker.bundles()[-1]
        es = attacker.entries(rowid)
        forged = es[-1].replace(b'"seq":119', b'"seq":120')
        from auditkeep.storage.codec import pack_entries

        attacker.execute("INSERT INTO bundles (log_id, first_seq, count, entries, digests) "
                         "VALUES (?, 120, 1, ?, ?)", attacker.log_id, pack_entries([forged]),
                         b"\x00" * 32)
        code, out = run_verify(data)
        assert code == 1
        assert "seq 120 inserted" in out

    def test_a_forged_row_inside_the_log_is_reported(self, data: DataDir,
                                                     attacker: Attacker) -> None:
        rowid, first, _count = attacker.bundles()[4]
        es = attacker.entries(rowid)
        es.insert(3, es[3].replace(b'"outcome":"success"', b'"outcome":"failure"'))
        attacker.write_entries(rowid, es)
        code, out = run_verify(data)
        assert code == 1
        assert f"seq {first + 3} modified" in out or f"seq {first + 4}" in out

    def test_truncation_with_an_older_checkpoint_table_is_a_rollback(
            self, data: DataDir, attacker: Attacker) -> None:
        # A careful attacker: drop the last 3 commits everywhere in the database.
        keep = 90
        attacker.execute("DELETE FROM bundles WHERE first_seq >= ?", keep)
        attacker.execute("DELETE FROM checkpoints WHERE size > ?", keep)
        root = attacker.execute("SELECT root FROM checkpoints WHERE size=?", keep)[0][0]
        attacker.execute("UPDATE logs SET size=?, root=?", keep, root)
        for level in range(8):  # cut every level of node hashes back to a 90-leaf tree
            attacker.execute("UPDATE tiles SET hashes=substr(hashes, 1, ?) WHERE level=?",
                             (keep >> level) * 32, level)
        code, out = run_verify(data)
        assert code == 1
        assert "rolled-back: the checkpoint journal holds a signed checkpoint of size 120" in out
        assert "modified" not in out  # the attacker was careful: only the journal tells

    def test_a_checkpoint_signed_by_another_key_is_forged(self, data: DataDir,
                                                          attacker: Attacker) -> None:
        size, note = attacker.execute(
            "SELECT size, note FROM checkpoints WHERE size=60")[0]
        cp = Checkpoint.parse(note.split("\n\n")[0] + "\n")
        other = Signer.generate(ORIGIN)
        attacker.execute("UPDATE checkpoints SET note=? WHERE size=60",
                         sign_checkpoint(cp, other))
        code, out = run_verify(data)
        assert code == 1
        assert f"checkpoint size {size} forged-checkpoint" in out

    def test_two_checkpoints_of_one_size_with_different_roots_are_a_fork(
            self, data: DataDir, attacker: Attacker) -> None:
        signer = real_signer(data)
        forked = Checkpoint(ORIGIN, 60, b"\x42" * 32)
        attacker.execute("INSERT INTO checkpoints (log_id, size, root, note, created) "
                         "VALUES (?, 60, ?, ?, 'now')", attacker.log_id, forked.root,
                         sign_checkpoint(forked, signer))
        code, out = run_verify(data)
        assert code == 1
        assert "checkpoint size 60 forked-checkpoint" in out

    def test_trusted_keys_given_by_the_auditor_catch_a_swapped_key_table(
            self, data: DataDir, attacker: Attacker) -> None:
        trusted = real_signer(data).verifier().to_string()
        other = Signer.generate(ORIGIN)
        cp, _ = open_checkpoint(
            attacker.execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1")[0][0],
            [real_signer(data).verifier()])
        attacker.execute("UPDATE checkpoints SET note=? WHERE size=?",
                         sign_checkpoint(cp, other), cp.size)
        attacker.execute("UPDATE signing_keys SET public_key=?", other.public_key)
        res = CliRunner().invoke(cli, ["verify", "--data", str(data.root), "--key", trusted])
        assert res.exit_code == 1
        assert "forged-checkpoint" in res.output
