"""Opening a store by what the user wrote: a PostgreSQL URL, or a SQLite file path.

`--storage postgresql://…` (or `postgres://…`) opens the PostgreSQL backend; anything
else is the path of an embedded SQLite database. The search index follows the store:
on PostgreSQL it lives in the same database (tables `search_*`), on SQLite in its own
file beside the log's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from auditkeep.storage.base import Backend

if TYPE_CHECKING:
    from auditkeep.query.index import SearchIndex
    from auditkeep.query.pgindex import PgSearchIndex

_PG_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(url: str) -> bool:
    return url.startswith(_PG_SCHEMES)


def describe(url: str) -> str:
    """The store for messages, without a password."""
    if not is_postgres(url):
        return url
    p = urlsplit(url)
    user = f"{p.username}@" if p.username else ""
    return f"postgresql://{user}{p.hostname or ''}{f':{p.port}' if p.port else ''}{p.path}"


def open_store(url: str, *, cache_mib: int = 64) -> Backend:
    if is_postgres(url):
        from auditkeep.storage.postgres import PostgresBackend

        return PostgresBackend(url)
    from auditkeep.storage.sqlite import SQLiteBackend

    return SQLiteBackend(url, cache_mib=cache_mib)


def open_index(url: str) -> SearchIndex | PgSearchIndex:
    """The search index of the store at `url` (for SQLite, `url` is the index file)."""
    if is_postgres(url):
        from auditkeep.query.pgindex import PgSearchIndex

        return PgSearchIndex(url)
    from auditkeep.query.index import SearchIndex

    return SearchIndex(url)
