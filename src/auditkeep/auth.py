"""API tokens: created once, stored only as SHA-256 hashes, bound to a tenant unless admin.

Scopes: `ingest` (send events), `read` (search and read records), `audit` (read records
and proofs, for auditors), `personal` (see personal values instead of commitments),
`privacy` (erase a data subject and export a subject's events, personal values
included), `admin` (everything, every tenant).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from auditkeep.errors import AuthError, ForbiddenError, ValidationError
from auditkeep.storage.base import Backend, TokenRecord

SCOPES = ("admin", "audit", "ingest", "personal", "privacy", "read")
TOKEN_PREFIX = "ak_"  # noqa: S105 -- a prefix, not a secret


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create_token(store: Backend, *, tenant: str | None, scopes: list[str],
                 name: str = "") -> tuple[str, TokenRecord]:
    """Make a token; the secret is returned once and never stored."""
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ValidationError(f"unknown scope {bad[0]!r}; choose from {', '.join(SCOPES)}"
                              if bad else "a token needs at least one scope")
    if "admin" not in scopes and tenant is None:
        raise ValidationError("a non-admin token must be bound to a tenant (--tenant)")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = TokenRecord(
        id="tok_" + secrets.token_hex(6),
        tenant=None if "admin" in scopes else tenant,
        scopes=tuple(sorted(set(scopes))),
        name=name,
        created=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    )
    store.put_token(token_hash(secret), record)
    return secret, record


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: the token's record."""

    token: TokenRecord

    @property
    def id(self) -> str:
        return self.token.id

    @property
    def is_admin(self) -> bool:
        return "admin" in self.token.scopes

    @property
    def sees_personal(self) -> bool:
        return self.is_admin or "personal" in self.token.scopes

    def tenant_for(self, requested: str | None) -> str:
        """The tenant this request acts on; a bound token cannot name another."""
        if self.token.tenant is None:
            return requested or "default"
        if requested is not None and requested != self.token.tenant:
            raise ForbiddenError(
                f"token {self.id} is bound to tenant {self.token.tenant!r}, not {requested!r}")
        return self.token.tenant

    def require(self, *any_of: str) -> None:
        if self.is_admin or any(s in self.token.scopes for s in any_of):
            return
        raise ForbiddenError(f"token {self.id} needs scope {' or '.join(any_of)}; it has "
                             f"{', '.join(self.token.scopes)}")


def authenticate(store: Backend, header: str | None) -> Principal:
    if not header:
        raise AuthError("missing Authorization header; send `Authorization: Bearer <token>`")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization must be `Bearer <token>`")
    record = store.token_by_hash(token_hash(token.strip()))
    if record is None:
        raise AuthError("unknown token")
    if record.revoked is not None:
        raise AuthError(f"token {record.id} was revoked at {record.revoked}")
    return Principal(record)
