"""The client named by the test settings' AUDITKEEP["CLIENT"]."""

from __future__ import annotations

from tests.integrations.conftest import RecordingClient

settings_client = RecordingClient()
