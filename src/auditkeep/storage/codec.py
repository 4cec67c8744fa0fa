"""Byte layouts shared by backends: entry bundles and tile coordinates."""

from __future__ import annotations

import struct
import threading

import orjson
import zstandard

from auditkeep.errors import CorruptionError
from auditkeep.storage.base import TILE_WIDTH

_local = threading.local()
_LENGTH = struct.Struct(">I")


def _compressor() -> zstandard.ZstdCompressor:
    c = getattr(_local, "c", None)
    if c is None:
        c = _local.c = zstandard.ZstdCompressor(level=1)  # ~9x on audit JSON, fastest
    return c


def _decompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "d", None)
    if d is None:
        d = _local.d = zstandard.ZstdDecompressor()
    return d


def pack_blob(data: bytes) -> bytes:
    return _compressor().compress(data)


def unpack_blob(blob: bytes, where: str) -> bytes:
    try:
        return _decompressor().decompress(blob)
    except zstandard.ZstdError as exc:
        raise CorruptionError(f"{where}: does not decompress ({exc})") from None


def pack_entries(entries: list[bytes]) -> bytes:
    """zstd of each entry prefixed by its 4-byte big-endian length."""
    return _compressor().compress(b"".join([len(e).to_bytes(4, "big") + e for e in entries]))


def unpack_entries(blob: bytes, count: int, where: str) -> list[bytes]:
    try:
        raw = _decompressor().decompress(blob)
    except zstandard.ZstdError as exc:
        raise CorruptionError(f"{where}: bundle does not decompress ({exc})") from None
    # struct's unpack_from reads the length in place: ~30% faster than slicing 4 bytes
    # for int.from_bytes (measured on 16k entries of ~390 bytes).
    out: list[bytes] = []
    emit, length = out.append, _LENGTH.unpack_from
    pos, end = 0, len(raw)
    while pos < end:
        if pos + 4 > end:
            raise CorruptionError(f"{where}: bundle ends inside an entry's length")
        (n,) = length(raw, pos)
        pos += 4
        emit(raw[pos : pos + n])
        pos += n
    if len(out) != count or pos != len(raw):
        raise CorruptionError(f"{where}: bundle holds {len(out)} entries, row says {count}")
    return out


def pack_json(value: object) -> bytes:
    return _compressor().compress(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))


def unpack_json(blob: bytes) -> object:
    return orjson.loads(_decompressor().decompress(blob))


def tile_groups(nodes: list[tuple[int, int, bytes]]) -> dict[tuple[int, int], bytearray]:
    """Group newly completed nodes into per-tile appends. Each item is a run
    ``(level, first index, hashes)`` of one or more consecutive nodes of one level
    (`CompactTree.extend_runs` gives one run per level, `extend` one per node), in
    completion order within each level."""
    groups: dict[tuple[int, int], bytearray] = {}
    for level, index, hashes in nodes:
        pos, end = 0, len(hashes)
        while pos < end:
            tile, off = divmod(index, TILE_WIDTH)
            take = min(end - pos, (TILE_WIDTH - off) * 32)
            key = (level, tile)
            buf = groups.get(key)
            if buf is None:
                groups[key] = bytearray(hashes[pos : pos + take])
            else:
                buf += hashes[pos : pos + take]
            pos += take
            index += take // 32
    return groups
