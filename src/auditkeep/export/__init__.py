"""Exports of stored records: NDJSON, CSV or Parquet, as they are stored or mapped onto
OCSF, ECS or CADF, streamed batch by batch in constant memory. No HTTP here: the
`GET /v1/export` endpoint and `auditkeep export` build on `stream`.

    from auditkeep.export import stream, media_type
    for chunk in stream(batches_of_records, "parquet", "ocsf"):
        out.write(chunk)

See docs/export.md.
"""

from auditkeep.export.formats import FORMATS, media_type, stream
from auditkeep.export.mappings import MAPPINGS, mapper

__all__ = ["FORMATS", "MAPPINGS", "mapper", "media_type", "stream"]
