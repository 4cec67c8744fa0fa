"""`auditkeep archive verify URL` as an auditor runs it: one line per range, every
problem named, exit 1 when anything is wrong."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

import auditkeep.archive
from auditkeep.archive.objects import Objects
from auditkeep.archive.seal import Archiver
from auditkeep.cli.main import cli
from auditkeep.datadir import Node
from tests.archive.conftest import TENANT


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["archive", "verify", *args])
    return result.exit_code, result.output


class TestVerifyCommand:
    def test_ok_with_a_pinned_key_and_the_hot_store(self, filled: Node, archiver: Archiver,
                                                    objects: Objects) -> None:
        archiver.run()
        key = next(k for k in filled.keys.published() if k.active).verifier(
            filled.logs.origin(TENANT)).to_string()
        code, out = run(objects.url, "--key", key, "--data", str(filled.data.root))  # type: ignore[union-attr]
        assert code == 0, out
        assert "acme [0, 256): 256 entries: ok" in out
        assert "acme [256, 512): 256 entries: ok" in out
        assert "note: no --key" not in out

    def test_tampering_is_named_and_exits_1(self, archiver: Archiver,
                                            objects: Objects) -> None:
        archiver.run()
        name = "acme/00000000000000000256-00000000000000000512.manifest"
        objects.put(name, objects.get(name).replace(b'"first":256', b'"first":0'))
        code, out = run(objects.url)
        assert code == 1
        assert "note: no --key given" in out
        assert f"{name}: manifest: " in out or f"{name}: signature: " in out
        assert "problem(s) found" in out

    def test_a_bad_key_or_an_empty_archive_is_one_line(self, objects: Objects) -> None:
        code, out = run(objects.url, "--key", "nonsense")
        assert code == 2 and out.count("\n") == 1 and "--key" in out
        code, out = run(objects.url)
        assert code == 1 and "no manifests under" in out
        missing = f"{objects.url}/nowhere"
        code, out = run(missing)
        assert code == 2 and "no such directory" in out
        assert not Path(missing).exists()  # an auditor's typo creates nothing


def test_all_is_sorted_and_complete() -> None:
    assert auditkeep.archive.__all__ == sorted(auditkeep.archive.__all__)
    for name in auditkeep.archive.__all__:
        assert hasattr(auditkeep.archive, name)
