"""The README.md inside every evidence bundle: what each part proves, how to check it,
and what it does not prove. Written for an auditor who has never seen auditkeep."""

from __future__ import annotations

_TEMPLATE = """\
# Evidence bundle: {events} event(s) of log `{log}`

Created {created} by auditkeep for tenant `{tenant}`. The events are entries of the
tamper-evident log `{origin}`, a Merkle tree (RFC 6962 / RFC 9162) whose tree heads
("checkpoints") the log signs with Ed25519. This bundle proves, offline and without
trusting the log operator beyond its public key, that each entry below is byte for
byte the one at its position in the log's tree of size {size}.

## What is in here

- `entries/<seq>.json`: the log entry at position `seq`, its exact canonical bytes
  (RFC 8785 JSON). Proves the event's content as logged.
- `proofs/<seq>.proof`: a C2SP `tlog-proof@v1` (the index, the RFC 6962 inclusion proof
  hashes, an empty line, then the checkpoint). Proves that SHA-256(0x00 || entry) is
  leaf `seq` of the signed tree.
- `checkpoint.txt`: the signed checkpoint (a C2SP signed note: origin, tree size, root
  hash) with {cosignatures} witness cosignature(s). Proves the log committed to this
  tree; each valid cosignature proves a witness saw the same tree (no split view).
- `keys/log.vkey`: the log's verifier key(s) for `{origin}`. Proves nothing by itself:
  obtain the key out of band (below).
{witness_row}
- `raw/<seq>.*`: {raws} raw original(s) byte for byte as the producer sent them (e.g. a
  CloudTrail record), bound to the entry by the SHA-256 in its `raw.sha256` field.
- `manifest.json`: an index (the query, the window, counts, each file's SHA-256 and
  size). Consistency only: it is not signed; the proofs and signatures are what count.

{purged_line}## Verifying

Use `verify_evidence.py` (shipped with auditkeep as `tools/verify_evidence.py`; one file,
Python standard library only, so you can read every line of it):

    python3 verify_evidence.py bundle.zip --key '<the log key, obtained out of band>'

It checks the zip layout byte for byte and every CRC, that the manifest lists exactly
the files present with their digests, the checkpoint signature (Ed25519, RFC 8032),
each entry's leaf hash and inclusion proof against the checkpoint's root, that every
proof carries the same checkpoint, each raw original's SHA-256, and each entry's `seq`.
Add `--witness <vkey>` (repeatable) and `--min-witnesses K` to require K witnesses'
valid cosignatures (C2SP tlog-cosignature/v1). `--json` prints a machine-readable
result. It exits 0 when every check passed and 1 otherwise, naming the failed part.

**Get the log's key out of band.** Without `--key` the verifier uses `keys/log.vkey`
from the bundle, which proves the bundle is consistent with *itself* only: whoever made
the bundle could also have made that key. Take the key from a source the log operator
cannot rewrite after the fact: the operator's published configuration, a copy taken
when the log was set up, or a witness you trust. The key(s) in this bundle are:

{log_keys}
## Checking a leaf by hand

    sha256sum <(printf '\\x00'; cat entries/17.json)        # the leaf hash, hex
    python3 -c "import hashlib,sys; d=open(sys.argv[1],'rb').read();
                print(hashlib.sha256(b'\\0' + d).hexdigest())" entries/17.json

Starting from that leaf, fold in each hash of `proofs/17.proof` as RFC 9162 §2.1.3.2
describes (SHA-256(0x01 ‖ left ‖ right)); the result must equal the base64 root hash on
the third line of `checkpoint.txt`.

## What this bundle does not prove

- That these are **all** the events matching the query: the selection was made by the
  log's own search index. A proof of inclusion is not a proof of completeness. (Anyone
  holding the full log can check completeness by reading every entry up to the tree size.)
- That the events are true: the log proves what was recorded and when it was sequenced,
  not that the producer told the truth.
- Anything about events outside the tree of size {size}, or that the log has not forked
  after it (for that, compare checkpoints over time or rely on witnesses).
- Personal values the log keeps apart: entries hold salted commitments in their place.
- The manifest's query, window and counts: they describe how the bundle was made.
"""


def readme(*, tenant: str, log: str, origin: str, created: str, events: int, purged: int,
           raws: int, size: int, cosignatures: int, log_keys: str, witnessed: bool) -> str:
    witness_row = ("- `keys/witnesses.vkeys`: the witnesses' cosignature keys (type 0x04) as the\n"
                   "  operator configured them. Obtain them from the witnesses themselves."
                   if witnessed else "- (no `keys/witnesses.vkeys`: no witnesses are configured)")
    purged_line = (f"{purged} selected event(s) were purged under the retention policy: "
                   "their entries are gone, but `manifest.json` lists each one's leaf hash "
                   "and its proof still shows it was in the log.\n\n" if purged else "")
    keys = "".join(f"    {line}\n" for line in log_keys.splitlines())
    return _TEMPLATE.format(tenant=tenant, log=log, origin=origin, created=created,
                            events=events, raws=raws, size=size, cosignatures=cosignatures,
                            witness_row=witness_row, purged_line=purged_line, log_keys=keys)
