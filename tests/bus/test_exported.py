"""The bus package's public names are listed, sorted, and importable."""

from __future__ import annotations

import auditkeep.bus


def test_all_is_sorted_and_complete() -> None:
    assert auditkeep.bus.__all__ == sorted(auditkeep.bus.__all__)
    for name in auditkeep.bus.__all__:
        assert hasattr(auditkeep.bus, name), name
