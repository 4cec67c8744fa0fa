"""Fixtures of the reliability suite: a data directory on a small tmpfs."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _can_mount() -> str | None:
    """None if this process may mount a tmpfs, else why not."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (run the reliability suite as root)"
    if shutil.which("mount") is None:
        return "no mount(8) on this machine"
    return None


class SmallDisk:
    """A tmpfs of a few MB: its size can grow (remount) while mounted."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def remount(self, size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)

    def free(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    why = _can_mount()
    if why is not None:
        pytest.skip(why)
    path = tmp_path / "disk"
    path.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(path)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield SmallDisk(path)
    finally:
        for log in path.glob("server-*.log"):  # kept for a failure's post-mortem
            shutil.copy(log, tmp_path / log.name)
        subprocess.run(["umount", "-l", str(path)], check=False)
