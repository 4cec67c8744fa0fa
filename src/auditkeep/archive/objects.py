"""Where the cold archive keeps its files: a local directory or an S3 bucket, through
obstore. The only module that knows an object store exists.

`open_objects("s3://bucket/prefix", endpoint=..., region=..., allow_http=True)` reads
the AWS_* variables of the environment for whatever is not given (obstore's own
rules), so credentials need not be in the configuration file.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.store import LocalStore, S3Store

from auditkeep.errors import ConfigError, StorageError

if TYPE_CHECKING:
    from obstore.store import ClientConfig, ObjectStore, S3Config

_S3_CONFIG = ("endpoint", "region", "access_key_id", "secret_access_key", "session_token")


@contextmanager
def _mapped(what: str) -> Iterator[None]:
    """obstore's exceptions (and OSError) as a StorageError saying what was being done."""
    try:
        yield
    except FileNotFoundError as exc:
        raise StorageError(f"{what}: not found ({_first_line(exc)})") from None
    except (OSError, RuntimeError, ValueError, ObstoreError) as exc:
        raise StorageError(f"{what}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    """obstore's messages go on with a multi-line debug dump; the first line says it."""
    return str(exc).split("\n", 1)[0].strip()


class Objects:
    """Named byte objects under one archive URL ("acme/0000…-0000….parquet")."""

    __slots__ = ("_store", "url")

    def __init__(self, url: str, store: ObjectStore) -> None:
        self.url = url.rstrip("/")
        self._store = store

    def url_of(self, name: str) -> str:
        return f"{self.url}/{name}"

    def put(self, name: str, data: bytes) -> None:
        """Write whole (atomic: readers see the old object or the new one)."""
        with _mapped(f"writing {self.url_of(name)}"):
            obstore.put(self._store, name, data)

    def get(self, name: str) -> bytes:
        with _mapped(f"reading {self.url_of(name)}"):
            return bytes(obstore.get(self._store, name).bytes())

    def reader(self, name: str, size: int | None = None) -> RangeReader:
        """A seekable file over the object that fetches only the byte ranges read (a
        Parquet reader then downloads the footer and the row groups it needs)."""
        with _mapped(f"opening {self.url_of(name)}"):
            return RangeReader(obstore.open_reader(self._store, name, size=size,
                                                   buffer_size=256 * 1024),
                               self.url_of(name))

    def names(self, prefix: str | None = None) -> list[str]:
        """Every object's name (under `prefix`), sorted."""
        out: list[str] = []
        with _mapped(f"listing {self.url}"):
            for batch in obstore.list(self._store, prefix):
                out.extend(meta["path"] for meta in batch)
        return sorted(out)


class RangeReader(io.RawIOBase):
    """obstore's ReadableFile as the binary file pyarrow reads (bytes out, errors mapped)."""

    def __init__(self, inner: Any, url: str) -> None:
        super().__init__()
        self._inner = inner
        self._url = url

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        with _mapped(f"reading {self._url}"):
            return bytes(self._inner.read(None if size is None or size < 0 else size))

    def readinto(self, buffer: Any, /) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        with _mapped(f"reading {self._url}"):
            return int(self._inner.seek(offset, whence))

    def tell(self) -> int:
        return int(self._inner.tell())

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


def open_objects(url: str, *, create: bool = True, **options: Any) -> Objects:
    """The object store of an archive URL: a directory path, file://… or s3://bucket/prefix.
    `create`: make a missing directory (the archiver), else it is an error (a reader).
    `options`: endpoint, region, access_key_id, secret_access_key, session_token (S3
    only) and allow_http (an http:// endpoint, e.g. a local test server)."""
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ConfigError(f"archive URL {url!r} names no bucket (s3://bucket/prefix)")
        config = cast("S3Config", {k: str(options[k]) for k in _S3_CONFIG if options.get(k)})
        client = cast("ClientConfig", {"allow_http": True}) if options.get("allow_http") else None
        with _mapped(f"opening {url}"):
            # Path-style requests: a custom endpoint (MinIO, moto, Ceph) rarely has
            # per-bucket host names.
            s3 = S3Store(bucket, prefix=prefix.strip("/") or None, config=config,
                         client_options=client, virtual_hosted_style_request=False)
        return Objects(url, s3)
    if "://" in url and not url.startswith("file://"):
        raise ConfigError(f"archive URL {url!r}: expected a path, file://… or s3://bucket/prefix")
    root = Path(url.removeprefix("file://")).expanduser()
    if not create and not root.is_dir():
        raise ConfigError(f"archive {url!r}: no such directory")
    with _mapped(f"opening {root}"):
        root.mkdir(parents=True, exist_ok=True)
        local = LocalStore(root.resolve())
    return Objects(url, local)
