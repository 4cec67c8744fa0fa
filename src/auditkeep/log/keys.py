"""The data directory's Ed25519 signing keys: one active key, older ones kept for verifying.

One key signs every log's checkpoints, each under the log's origin as key name (so
each log has its own C2SP key ID). Private keys live in files of mode 0600 under
`DATA/keys/`; the backend keeps every public key ever used, so rotated-out keys stay
published.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from auditkeep.errors import ConfigError
from auditkeep.log.note import Signer, Verifier, key_id
from auditkeep.storage.base import Backend, SigningKeyRecord

_KEY_NAME = "auditkeep"  # placeholder name in the key file; each log signs under its origin


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def write_secret(path: Path, text: str) -> None:
    """Create `path` with mode 0600 (never readable by others, not even for an instant)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


@dataclass(frozen=True, slots=True)
class PublishedKey:
    public_key: bytes
    created: str
    retired: str | None

    @property
    def active(self) -> bool:
        return self.retired is None

    def verifier(self, origin: str) -> Verifier:
        return Verifier(origin, key_id(origin, self.public_key), self.public_key)


class KeyRing:
    """The active signer and every published key of a data directory."""

    def __init__(self, store: Backend, key_dir: Path | None) -> None:
        self._store = store
        self._dir = key_dir
        self._signer: Signer | None = None
        self._memory_signer: Signer | None = None
        self._checked = 0.0

    def _path(self, public_key: bytes) -> Path:
        if self._dir is None:
            raise ConfigError("this key ring has no key directory")
        return self._dir / f"{public_key.hex()[:16]}.key"

    def ensure(self) -> bool:
        """Create the first signing key if there is none. True when one was created."""
        if any(k.retired is None for k in self._store.signing_keys()):
            return False
        self.rotate()
        return True

    def rotate(self) -> Signer:
        """Make a new active key; the old one is retired but stays published."""
        new = Signer.generate(_KEY_NAME)
        if self._dir is not None:
            write_secret(self._path(new.public_key), new.to_string() + "\n")
        else:
            self._memory_signer = new
        now = _now()
        for k in self._store.signing_keys():
            if k.retired is None:
                self._store.retire_signing_key(k.public_key, now)
        self._store.put_signing_key(SigningKeyRecord(new.public_key, now))
        self._signer = new
        return new

    def signer(self) -> Signer:
        """The active signer. Re-checks the store at most once a second, so a
        `keys rotate` run beside a live server takes effect without a restart."""
        now = time.monotonic()
        if self._signer is not None and now - self._checked < 1.0:
            return self._signer
        self._checked = now
        active = [k for k in self._store.signing_keys() if k.retired is None]
        if not active:
            raise ConfigError("no active signing key; run `auditkeep keys rotate`")
        if self._signer is not None and self._signer.public_key == active[-1].public_key:
            return self._signer
        if self._dir is None:
            if self._memory_signer is None:
                raise ConfigError("the in-memory signing key is gone")
            return self._memory_signer
        path = self._path(active[-1].public_key)
        try:
            signer = Signer.parse(path.read_text().strip())
        except OSError as exc:
            raise ConfigError(f"cannot read the signing key {path}: {exc.strerror}") from None
        if signer.public_key != active[-1].public_key:
            raise ConfigError(f"{path} does not hold the active public key")
        self._signer = signer
        return signer

    def refresh(self) -> None:
        """Forget the cached signer (another process may have rotated)."""
        self._signer = None

    def published(self) -> list[PublishedKey]:
        return [PublishedKey(k.public_key, k.created, k.retired)
                for k in self._store.signing_keys()]
