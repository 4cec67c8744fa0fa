"""The witness package's public names are listed, sorted, and importable."""

from __future__ import annotations

import auditkeep.witness
import auditkeep.witness.client
import auditkeep.witness.cosignature
import auditkeep.witness.job
import auditkeep.witness.server
import auditkeep.witness.serving


def test_all_is_sorted_and_complete() -> None:
    for module in (auditkeep.witness, auditkeep.witness.client, auditkeep.witness.cosignature,
                   auditkeep.witness.job, auditkeep.witness.server, auditkeep.witness.serving):
        assert module.__all__ == sorted(module.__all__), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
