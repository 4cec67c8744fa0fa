"""Fixtures of the log tests: a populated data directory and an attacker's hands on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from auditkeep.datadir import DataDir
from tests.log.tamper import Attacker, populate


@pytest.fixture
def data(data_dir: DataDir) -> DataDir:
    populate(data_dir)  # 120 entries; checkpoints at 0, 10, ..., 120
    return data_dir


@pytest.fixture
def attacker(data: DataDir) -> Iterator[Attacker]:
    a = Attacker(data)
    yield a
    a.close()
