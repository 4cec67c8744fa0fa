"""Evidence bundles: build time for N events, and tools/verify_evidence.py's time.

    python bench/evidence.py [--events 1000] [--witnesses 3]

Baselines from the same run: reading the same N canonical entries by seq (the floor of
any build); the verifier with `cryptography`'s Ed25519 swapped in for its pure-Python
one (whole bundle, and one signature check on its own).
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import statistics
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from auditkeep.datadir import DataDir
from auditkeep.evidence import Selection, build_bundle
from auditkeep.log.keys import KeyRing
from auditkeep.log.service import LogService
from auditkeep.storage.base import Cosignature
from auditkeep.witness.cosignature import WitnessSigner
from common import ROOT, build_log, report, scratch

TOOL = ROOT / "tools" / "verify_evidence.py"


def _tool() -> Any:
    spec = importlib.util.spec_from_file_location("verify_evidence", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def median_ms(fn: Callable[[], Any], k: int) -> float:
    out = []
    for _ in range(k):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out) * 1e3


def cryptography_verify(public: bytes, msg: bytes, sig: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(sig, msg)
    except (InvalidSignature, ValueError):
        return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--witnesses", type=int, default=3)
    ap.add_argument("--samples", type=int, default=7)
    args = ap.parse_args()
    n, k = args.events, args.samples
    d = DataDir(build_log(f"evidence-{n}", n, with_index=False))
    store = d.open_backend()
    logs = LogService(store, KeyRing(store, d.keys))
    info = logs.info("default")
    cp = logs.checkpoint("default")
    text = cp.note[:cp.note.rfind("\n\n") + 1]
    witnesses = [WitnessSigner(f"witness.example/w{i}",
                               Ed25519PrivateKey.from_private_bytes(bytes([60 + i]) * 32))
                 for i in range(args.witnesses)]
    for w in witnesses:
        store.put_cosignature(Cosignature(info.id, cp.size, cp.root, w.name,
                                          w.cosign(text, int(time.time())), "bench"))
    sel = Selection("default", "default", list(range(n)),
                    witness_keys=[w.vkey for w in witnesses])
    now = datetime.now(UTC)
    bundle = build_bundle(logs, sel, now)
    out = scratch("evidence-bundle") / "bundle.zip"
    out.write_bytes(bundle)
    print(f"bundle of {n:,} events: {len(bundle):,} bytes, {args.witnesses} cosignature(s)")

    build = median_ms(lambda: build_bundle(logs, sel, now), k)
    fresh = LogService(store, KeyRing(store, d.keys))  # no warm bundle cache
    read = median_ms(lambda: [fresh.entry("default", s) for s in range(n)], k)
    report(f"build a bundle of {n:,} events", build, "ms", "read the entries", read)

    V = _tool()
    log_keys = [V.VerifierKey(kk.verifier(info.origin).to_string(), V.ALG_ED25519, "--key")
                for kk in logs.keys.published()]
    wkeys = [V.VerifierKey(w.vkey, V.ALG_COSIGNATURE_V1, "--witness") for w in witnesses]

    def verify() -> None:
        r = V.verify_bundle(bundle, log_keys, wkeys, len(wkeys))
        assert not r.failures, r.failures

    pure = median_ms(verify, k)
    stdlib_ed25519 = V.ed25519_verify
    V.ed25519_verify = cryptography_verify
    try:
        fast = median_ms(verify, k)
    finally:
        V.ed25519_verify = stdlib_ed25519
    report("verify the bundle (stdlib Ed25519)", pure, "ms", "with cryptography's Ed25519",
           fast)

    sig_line = cp.note[cp.note.rfind("\n\n") + 2:].split("\n")[0]
    raw = base64.b64decode(sig_line.rsplit(" ", 1)[1])[4:]
    pub, msg = log_keys[0].public_key, text.encode()
    one_pure = median_ms(lambda: stdlib_ed25519(pub, msg, raw), 50) * 1e3
    one_fast = median_ms(lambda: cryptography_verify(pub, msg, raw), 50) * 1e3
    report("one Ed25519 verification (stdlib)", one_pure, "µs", "cryptography", one_fast)

    vkey = log_keys[0]
    key_arg = f"{vkey.name}+{vkey.key_id.hex()}+" + base64.b64encode(
        b"\x01" + vkey.public_key).decode()
    wall = median_ms(lambda: subprocess.run(
        ["/usr/bin/python3", "-I", "-S", str(TOOL), str(out), "--key", key_arg,
         *[a for w in witnesses for a in ("--witness", w.vkey)],
         "--min-witnesses", str(len(witnesses))], check=True, capture_output=True), 3)
    start = median_ms(lambda: subprocess.run(["/usr/bin/python3", "-I", "-S", "-c", "pass"],
                                             check=True), 3)
    report("python3 -I -S verify_evidence.py (wall)", wall, "ms", "python3 -I -S -c pass",
           start)
    store.close()


if __name__ == "__main__":
    main()
