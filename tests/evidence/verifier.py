"""tools/verify_evidence.py loaded from its file path, as an auditor would run it (it is
not part of the package), and small helpers to rewrite a bundle's members."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import orjson

from auditkeep.evidence.layout import write_zip

ROOT = Path(__file__).resolve().parent.parent.parent
TOOL = ROOT / "tools" / "verify_evidence.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_evidence", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("verify_evidence", module)
    spec.loader.exec_module(module)
    return module


V = load()


def members(bundle: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def rezip(bundle: bytes, changed: dict[str, bytes], *, fix_manifest: bool = True) -> bytes:
    """The bundle with some members replaced and, unless not `fix_manifest`, the
    manifest's digests made to match: what a forger who knows the format would do."""
    parts = members(bundle)
    out = [(name, changed.get(name, body)) for name, body in parts]
    if fix_manifest:
        manifest = orjson.loads(dict(out)["manifest.json"])
        bodies = dict(out)
        for f in manifest["files"]:
            f["sha256"] = hashlib.sha256(bodies[f["path"]]).hexdigest()
            f["size"] = len(bodies[f["path"]])
        out = [(n, orjson.dumps(manifest) if n == "manifest.json" else b) for n, b in out]
    from datetime import UTC, datetime
    return write_zip(out, datetime(2026, 1, 1, tzinfo=UTC))
