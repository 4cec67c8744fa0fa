"""AuditLogHandler: log records with an `audit` extra become events; others are ignored."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from auditkeep import context
from auditkeep.client import set_default_client
from auditkeep.errors import ConfigError
from auditkeep.integrations.logging import AuditLogHandler
from tests.integrations.conftest import RecordingClient


@pytest.fixture
def logger(recorder: RecordingClient) -> Iterator[logging.Logger]:
    log = logging.getLogger("tests.integrations.audit")
    handler = AuditLogHandler(recorder)
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    yield log
    log.removeHandler(handler)


class TestAuditLogHandler:
    def test_audit_extra_becomes_an_event(self, logger: logging.Logger,
                                          recorder: RecordingClient) -> None:
        logger.info("refunded order %s", 42, extra={"audit": {
            "action": "orders.refund", "actor": {"id": "u1", "type": "user"},
            "resource": {"type": "order", "id": "42"}, "metadata": {"amount": "9.99"}}})
        [ev] = recorder.events
        assert ev["action"] == "orders.refund"
        assert ev["actor"] == {"id": "u1", "type": "user"}
        assert ev["resource"] == {"type": "order", "id": "42"}
        assert ev["metadata"] == {"amount": "9.99"}
        assert ev["reason"] == "refunded order 42"
        assert ev["outcome"] == "success"

    def test_explicit_reason_wins_over_the_message(self, logger: logging.Logger,
                                                   recorder: RecordingClient) -> None:
        logger.warning("deleted", extra={"audit": {"action": "orders.delete", "actor": "u1",
                                                   "reason": "customer asked"}})
        assert recorder.events[0]["reason"] == "customer asked"

    def test_reason_uses_the_handler_formatter(self, recorder: RecordingClient) -> None:
        log = logging.getLogger("tests.integrations.formatted")
        handler = AuditLogHandler(recorder)
        handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
        log.addHandler(handler)
        try:
            log.warning("hello", extra={"audit": {"action": "a.b", "actor": "u1"}})
        finally:
            log.removeHandler(handler)
        assert recorder.events[0]["reason"] == "[tests.integrations.formatted] hello"

    def test_long_message_is_cut_to_the_schema_limit(self, logger: logging.Logger,
                                                     recorder: RecordingClient) -> None:
        logger.info("x" * 5000, extra={"audit": {"action": "a.b", "actor": "u1"}})
        assert recorder.events[0]["reason"] == "x" * 1024

    def test_records_without_audit_are_ignored(self, logger: logging.Logger,
                                               recorder: RecordingClient) -> None:
        logger.info("just a log line")
        logger.error("an error %s", "too", extra={"other": 1})
        assert recorder.events == []

    def test_context_fills_the_actor_and_request(self, logger: logging.Logger,
                                                 recorder: RecordingClient) -> None:
        with context.scope(actor="alice", request_id="r-3"):
            logger.info("exported", extra={"audit": {"action": "reports.export"}})
        [ev] = recorder.events
        assert ev["actor"] == {"id": "alice", "type": "user"}
        assert ev["request_id"] == "r-3"

    def test_handler_level_filters(self, recorder: RecordingClient) -> None:
        log = logging.getLogger("tests.integrations.levels")
        log.setLevel(logging.DEBUG)
        handler = AuditLogHandler(recorder, level=logging.WARNING)
        log.addHandler(handler)
        try:
            log.info("low", extra={"audit": {"action": "a.low", "actor": "u1"}})
            log.warning("high", extra={"audit": {"action": "a.high", "actor": "u1"}})
        finally:
            log.removeHandler(handler)
        assert recorder.actions() == ["a.high"]

    @pytest.mark.parametrize("audit", [
        {"action": "a.b"},                             # no actor bound nor given
        {"actor": "u1"},                               # no action
        {"action": "not an action!", "actor": "u1"},   # refused by schema v1
        "orders.delete",                               # not a mapping
    ])
    def test_refused_event_goes_to_handle_error_and_never_raises(
            self, logger: logging.Logger, recorder: RecordingClient,
            capsys: pytest.CaptureFixture[str], audit: object) -> None:
        logger.info("bad", extra={"audit": audit})
        assert recorder.events == []
        assert "--- Logging error ---" in capsys.readouterr().err

    def test_needs_a_client(self) -> None:
        set_default_client(None)
        with pytest.raises(ConfigError, match="no client"):
            AuditLogHandler()

    def test_default_client_is_used(self, recorder: RecordingClient) -> None:
        set_default_client(recorder)  # type: ignore[arg-type]  # a stand-in for AuditClient
        try:
            handler = AuditLogHandler()
        finally:
            set_default_client(None)
        assert handler.client is recorder
