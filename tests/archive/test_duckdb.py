"""DuckDB reads an archive as it is, with the query docs/archive.md shows."""

from __future__ import annotations

import duckdb

from auditkeep.archive.objects import Objects
from auditkeep.archive.seal import Archiver

# The query of docs/archive.md, with the archive's directory filled in.
QUERY = """
SELECT action, count(*) AS events, count(DISTINCT actor_id) AS actors,
       min(seq) AS first_seq, max(seq) AS last_seq
FROM read_parquet('{root}/acme/*.parquet')
WHERE time >= TIMESTAMPTZ '2026-01-01' AND time < TIMESTAMPTZ '2026-01-04'
GROUP BY action ORDER BY action
"""


def test_the_documented_query_counts_right(archiver: Archiver, objects: Objects) -> None:
    archiver.run()
    rows = duckdb.connect().sql(QUERY.format(root=objects.url)).fetchall()
    # Events 0..511 are archived; days 1-3 of January hold events 0..299; every third
    # is a delete; five actors take turns.
    assert rows == [("orders.delete", 100, 5, 0, 297), ("orders.view", 200, 5, 1, 299)]


def test_entries_are_json_to_duckdb(archiver: Archiver, objects: Objects) -> None:
    archiver.run()
    rows = duckdb.connect().execute(
        "SELECT seq, json_extract_string(decode(entry), '$.resource.id') AS rid, "
        "octet_length(leaf) FROM read_parquet(?) WHERE seq IN (7, 300) ORDER BY seq",
        [f"{objects.url}/acme/*.parquet"]).fetchall()
    assert rows == [(7, "7", 32), (300, "300", 32)]
