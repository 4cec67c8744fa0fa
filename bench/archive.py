"""The cold archive: sealing ranges of a log as Parquet with signed manifests, and
verifying them offline.

    python bench/archive.py [--entries 100000] [--range 16384]

Baselines from the same run: plain pyarrow writing the same tables (zstd, same row
groups) to files, for the seal; reading the same files with pyarrow and SHA-256 of
every entry, for the verify.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import time

import pyarrow.parquet as pq

from auditkeep.archive.objects import open_objects
from auditkeep.archive.seal import Archiver
from auditkeep.archive.table import COMPRESSION, ROW_GROUP, read_columns
from auditkeep.archive.verify import verify_archive
from auditkeep.datadir import DataDir, open_node
from common import build_log, report, scratch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--range", type=int, default=16_384)
    args = ap.parse_args()
    n, width = args.entries, args.range
    built = DataDir(build_log(f"archive-log-{n}", n, with_index=False))
    work = scratch("archive")
    shutil.copytree(built.root, work / "data")  # sealing records archive rows: use a copy
    node = open_node(DataDir(work / "data"), with_index=False)
    try:
        info = node.store.get_log("default")
        assert info is not None
        objects = open_objects(str(work / "archive"))
        t = time.perf_counter()
        sealed = Archiver(node.logs, objects, width).run().sealed
        took = time.perf_counter() - t
        archived = sum(r.end - r.first for r in sealed)
        assert archived == n // width * width, (archived, n, width)
        names = [n for n in objects.names() if n.endswith(".parquet")]
        size = sum(len(objects.get(x)) for x in names)
        tables = [read_columns(objects.get(x), tuple(pq.ParquetFile(
            work / "archive" / x).schema_arrow.names)) for x in names]
        t = time.perf_counter()
        for i, table in enumerate(tables):
            pq.write_table(table, work / f"plain-{i}.parquet", compression=COMPRESSION,
                           row_group_size=ROW_GROUP)
        plain = time.perf_counter() - t
        report(f"seal {archived:,} entries in {len(sealed)} ranges", archived / took,
               "entries/s", "plain pyarrow zstd write", archived / plain)
        raw = sum(len(e) for tb in tables for e in tb.column("entry").to_pylist())
        print(f"{'':<48} archive {size / 1e6:.1f} MB, {size / archived:.0f} bytes an entry "
              f"(canonical entries {raw / archived:.0f} bytes)")
        vkeys = [k.verifier(info.origin).to_string() for k in node.keys.published()]
        t = time.perf_counter()
        checked = verify_archive(objects, vkeys)
        verify = time.perf_counter() - t
        assert checked.ok, checked.problems[:3]
        t = time.perf_counter()
        for x in names:
            for e in pq.read_table(work / "archive" / x, columns=["entry"]).column(
                    "entry").to_pylist():
                hashlib.sha256(e).digest()
        floor = time.perf_counter() - t
        report("verify the archive (keys pinned)", archived / verify, "entries/s",
               "pyarrow read + SHA-256 of each entry", archived / floor)
    finally:
        node.close()


if __name__ == "__main__":
    main()
