"""The evidence zip's byte layout: stored members back to back, a central directory and
its end record, with no extra fields, comments or data descriptors.

Written by hand rather than through `zipfile` so that the layout is ours to pin down:
tools/verify_evidence.py accepts exactly this layout, which lets it account for every
byte of a bundle (a changed byte anywhere fails a named check). Any zip tool reads it.
"""

from __future__ import annotations

import binascii
import re
import struct
from collections.abc import Sequence
from datetime import datetime

from auditkeep.errors import ValidationError

_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_END = struct.Struct("<4s4H2LH")
VERSION_MADE_BY = (3 << 8) | 20  # Unix, zip 2.0 (as tools/verify_evidence.py expects)
VERSION_NEEDED = 20
EXTERNAL_ATTR = 0o100644 << 16  # a regular file, rw-r--r--
_MAX = 0xFFFFFFFF  # no zip64: a bundle is far smaller than 4 GiB (its events are capped)
_NAME = re.compile(r"[A-Za-z0-9._/-]+")


def _dos_time(when: datetime) -> tuple[int, int]:
    t = (when.hour << 11) | (when.minute << 5) | (when.second // 2)
    d = ((max(when.year, 1980) - 1980) << 9) | (when.month << 5) | when.day
    return t, d


def write_zip(members: Sequence[tuple[str, bytes]], when: datetime) -> bytes:
    """A zip of `members` (name, bytes), in that order, every one stored uncompressed."""
    mtime, mdate = _dos_time(when)
    out = bytearray()
    central = bytearray()
    for name, body in members:
        if not _NAME.fullmatch(name):
            raise ValidationError(f"evidence member name {name!r} is not plain ASCII")
        raw_name = name.encode("ascii")
        crc = binascii.crc32(body)
        offset = len(out)
        if offset + len(body) > _MAX:
            raise ValidationError("the evidence bundle would exceed 4 GiB; select fewer events")
        out += _LOCAL.pack(b"PK\x03\x04", VERSION_NEEDED, 0, 0, mtime, mdate, crc, len(body),
                           len(body), len(raw_name), 0)
        out += raw_name
        out += body
        central += _CENTRAL.pack(b"PK\x01\x02", VERSION_MADE_BY, VERSION_NEEDED, 0, 0, mtime,
                                 mdate, crc, len(body), len(body), len(raw_name), 0, 0, 0, 0,
                                 EXTERNAL_ATTR, offset)
        central += raw_name
    cd_offset = len(out)
    out += central
    out += _END.pack(b"PK\x05\x06", 0, 0, len(members), len(members), len(central),
                     cd_offset, 0)
    return bytes(out)
