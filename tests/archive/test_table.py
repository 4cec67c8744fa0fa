"""The Parquet table of a range: Arrow's JSON reader and the Python fallback build the
same columns from the same entries."""

from __future__ import annotations

import orjson
import pytest

from auditkeep.archive import table
from auditkeep.datadir import Node
from auditkeep.errors import CorruptionError
from auditkeep.log import merkle
from tests.archive.conftest import TENANT


def test_both_paths_build_the_same_table(filled: Node) -> None:
    entries = [filled.logs.entry(TENANT, s) for s in range(300)]
    # shapes a stored entry can take: no source, no resource, a time without fraction
    odd = orjson.loads(entries[299])
    odd.pop("source")
    odd.pop("resource")
    odd["time"] = "2026-01-04T00:00:00Z"
    entries[299] = orjson.dumps(odd, option=orjson.OPT_SORT_KEYS)
    leaves = merkle.leaf_hashes(entries)
    fast = table._arrow_table(0, entries, leaves)
    assert fast.equals(table._python_table(0, entries, leaves))
    assert fast.column("source")[299].as_py() is None
    assert fast.column("actor_id")[0].as_py() == "user-0"


def test_a_misplaced_entry_is_refused_by_both(filled: Node) -> None:
    entries = [filled.logs.entry(TENANT, s) for s in range(4)]
    entries[2], entries[3] = entries[3], entries[2]
    leaves = merkle.leaf_hashes(entries)
    for build in (table._arrow_table, table._python_table):
        with pytest.raises(CorruptionError, match="seq 2 says seq 3"):
            build(0, entries, leaves)
