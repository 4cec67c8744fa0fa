"""The package's public names are listed, sorted, and importable."""

from __future__ import annotations

import auditkeep
import auditkeep.client
import auditkeep.context
import auditkeep.errors
import auditkeep.evidence


def test_all_is_sorted_and_complete() -> None:
    for module in (auditkeep, auditkeep.client, auditkeep.context, auditkeep.errors,
                   auditkeep.evidence):
        assert module.__all__ == sorted(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_every_error_maps_to_an_http_status() -> None:
    for name in auditkeep.errors.__all__:
        cls = getattr(auditkeep.errors, name)
        if isinstance(cls, type) and issubclass(cls, auditkeep.errors.AuditkeepError):
            assert 400 <= cls.status < 600
            assert cls.slug
