"""Each integration module lists its public names, sorted, and they import."""

from __future__ import annotations

import importlib

import pytest

MODULES = ["auditkeep.integrations.asgi", "auditkeep.integrations.flask",
           "auditkeep.integrations.logging", "auditkeep.integrations.django.middleware",
           "auditkeep.integrations.django.tracking"]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__ == sorted(module.__all__)
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.{attr}"
