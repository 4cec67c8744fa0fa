"""Pseudonyms and subject keys.

A *pseudonym* is `pn_` and the first 128 bits of HMAC-SHA-256(tenant key, value) in hex:
stable per tenant (the same email is the same token in every event, so it can still be
searched and correlated), unlinkable across tenants, and not reversible without the key.
It is what the `hash` redaction rule writes into the entry and what an erasure record
names instead of the subject.

A *subject key* is the 64-bit index key under which the store finds a subject's events
(actor id, actor email, committed values). It lives beside the log, not in any entry,
and is deleted by erasure, so it needs no secret: it is a plain BLAKE2b of the value.
"""

from __future__ import annotations

import hashlib
import hmac
import re

PREFIX = "pn_"
#: The name of the store secret (Backend.secret) that tenant keys derive from.
PSEUDONYM_SECRET = "pseudonym"  # noqa: S105 -- a name, not a secret
PSEUDONYM = re.compile(r"^pn_[0-9a-f]{32}$")
_KEY_LABEL = b"auditkeep pseudonym key v1\x00"


def tenant_key(secret: bytes, tenant: str) -> bytes:
    """The tenant's pseudonym key, derived from the store's secret: tenants never share
    pseudonyms, and one secret is all there is to keep."""
    return hmac.digest(secret, _KEY_LABEL + tenant.encode(), "sha256")


def pseudonym(key: bytes, value: str) -> str:
    """`pn_<32 hex>` for `value` under a tenant key. A value that already is a
    pseudonym is returned unchanged, so redacting twice changes nothing."""
    if is_pseudonym(value):
        return value
    return PREFIX + hmac.digest(key, value.encode(), "sha256")[:16].hex()


def is_pseudonym(value: str) -> bool:
    return len(value) == 35 and PSEUDONYM.match(value) is not None


def normal_subject(value: str) -> str:
    """The form subjects are compared in: stripped, and an email lower-cased whole (the
    same mailbox is written `Alice@Example.org` by one producer and `alice@example.org`
    by another; erasing both is what a data subject asks for)."""
    v = value.strip()
    return v.lower() if "@" in v else v


def subject_key(value: str) -> int:
    """The signed 64-bit key of a subject identifier (SQLite integers are signed)."""
    digest = hashlib.blake2b(normal_subject(value).encode(), digest_size=8,
                             person=b"ak-subject").digest()
    return int.from_bytes(digest, "big", signed=True)


__all__ = [
    "PREFIX",
    "PSEUDONYM_SECRET",
    "is_pseudonym",
    "normal_subject",
    "pseudonym",
    "subject_key",
    "tenant_key",
]
