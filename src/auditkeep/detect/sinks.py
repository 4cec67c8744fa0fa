"""The sinks an alert is delivered to: a signed JSON webhook, a Slack-compatible
incoming webhook, email over SMTP and the PagerDuty Events API v2.

Each sink's `send` returns when the receiver took the alert and raises `DeliveryError`
otherwise; `permanent` errors (a 4xx other than 408/429, an SMTP 5xx, a missing secret)
are not retried. Webhook receivers check the signature with `verify_signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import orjson

from auditkeep.detect.alerting import (
    PagerDutySinkConfig,
    SinkConfig,
    SlackSinkConfig,
    SmtpSinkConfig,
    WebhookSinkConfig,
)
from auditkeep.detect.alerts import Alert
from auditkeep.errors import AuditkeepError

SIGNATURE_HEADER = "X-Auditkeep-Signature"
TIMESTAMP_HEADER = "X-Auditkeep-Timestamp"
DELIVERY_HEADER = "X-Auditkeep-Delivery"
USER_AGENT = "auditkeep-alerts"
_RETRYABLE_4XX = (408, 429)


class DeliveryError(AuditkeepError):
    """A sink did not take an alert. `retry_after`: seconds the receiver asked us to
    wait; `permanent`: retrying cannot help (the delivery goes to the dead letters)."""

    status = 502
    title = "Delivery failed"
    slug = "delivery"

    def __init__(self, reason: str, retry_after: float | None = None, *,
                 permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.permanent = permanent


class Sink(Protocol):
    name: str

    def send(self, alert: Alert, *, delivery_id: str = "") -> None: ...
    def close(self) -> None: ...


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA-256 of
    `<timestamp>.<body>` under the secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes | str, header: str,
                     tolerance: float = 300, *, now: float | None = None) -> bool:
    """For receivers: True if `header` (X-Auditkeep-Signature) signs this body at this
    timestamp (X-Auditkeep-Timestamp) and the timestamp is within `tolerance` seconds
    of now (a replayed old request fails). Compared in constant time."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    raw = body.encode() if isinstance(body, str) else body
    return hmac.compare_digest(sign(secret, timestamp, raw).encode(), header.strip().encode())


def alert_link(ui_url: str | None, alert: Alert) -> str | None:
    if not ui_url:
        return None
    return f"{ui_url}/alerts/{quote(alert.id)}?tenant={quote(alert.tenant)}"


def _env(name: str | None, what: str) -> str:
    value = os.environ.get(name or "")
    if not value:
        raise DeliveryError(f"{what}: environment variable {name} is not set", permanent=True)
    return value


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


class _HttpSink:
    """A JSON POST; what counts as taken, retried or refused is the same for all three."""

    def __init__(self, name: str, url: str, timeout: float) -> None:
        self.name = name
        self.url = url
        self._client = httpx.Client(timeout=timeout, follow_redirects=False,
                                    headers={"User-Agent": USER_AGENT})

    def _post(self, body: bytes, headers: Mapping[str, str]) -> None:
        try:
            r = self._client.post(self.url, content=body,
                                  headers={"Content-Type": "application/json", **headers})
        except httpx.TimeoutException:
            raise DeliveryError(f"timed out posting to {self.url}") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"posting to {self.url}: {exc}") from None
        if 200 <= r.status_code < 300:
            return
        reason = f"HTTP {r.status_code} from {self.url}: {r.text[:200]}".rstrip(": ")
        transient = r.status_code >= 500 or r.status_code in _RETRYABLE_4XX
        raise DeliveryError(reason, _retry_after(r.headers.get("Retry-After")),
                            permanent=not transient)

    def close(self) -> None:
        self._client.close()


class WebhookSink(_HttpSink):
    def __init__(self, cfg: WebhookSinkConfig, *, clock: Callable[[], float] = time.time
                 ) -> None:
        super().__init__(cfg.name, cfg.url, cfg.timeout)
        self._cfg = cfg
        self._clock = clock

    def send(self, alert: Alert, *, delivery_id: str = "") -> None:
        now = self._clock()
        body = orjson.dumps({"alert": alert.to_json(), "sent": _iso(now)})
        stamp = str(int(now))
        headers = {**self._cfg.headers, TIMESTAMP_HEADER: stamp, DELIVERY_HEADER: delivery_id}
        secret = self._cfg.secret
        if self._cfg.secret_env is not None:
            secret = _env(self._cfg.secret_env, f"sink {self.name}")
        if secret is not None:
            headers[SIGNATURE_HEADER] = sign(secret, stamp, body)
        self._post(body, headers)


class SlackSink(_HttpSink):
    def __init__(self, cfg: SlackSinkConfig, *, ui_url: str | None = None) -> None:
        super().__init__(cfg.name, cfg.url, cfg.timeout)
        self._ui_url = ui_url

    def send(self, alert: Alert, *, delivery_id: str = "") -> None:
        self._post(orjson.dumps(slack_payload(alert, self._ui_url)), {})


def slack_payload(alert: Alert, ui_url: str | None = None) -> dict[str, Any]:
    text = f"[{alert.level}] {alert.title or alert.rule}"
    fields = [{"type": "mrkdwn", "text": f"*Level*\n{alert.level}"},
              {"type": "mrkdwn", "text": f"*Rule*\n`{alert.rule}`"},
              {"type": "mrkdwn", "text": f"*Count*\n{alert.count}"},
              {"type": "mrkdwn", "text": f"*Tenant*\n{alert.tenant}"}]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": text[:150]}},
        {"type": "section", "fields": fields}]
    if alert.group:
        group = ", ".join(f"{k}={v}" for k, v in alert.group.items())
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"group: {group}"[:2000]}]})
    link = alert_link(ui_url, alert)
    if link:
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": f"<{link}|Open the alert in auditkeep>"}})
    return {"text": text, "blocks": blocks}


class PagerDutySink(_HttpSink):
    def __init__(self, cfg: PagerDutySinkConfig, *, ui_url: str | None = None) -> None:
        super().__init__(cfg.name, cfg.url, cfg.timeout)
        self._cfg = cfg
        self._ui_url = ui_url

    def send(self, alert: Alert, *, delivery_id: str = "") -> None:
        key = self._cfg.routing_key
        if self._cfg.routing_key_env is not None:
            key = _env(self._cfg.routing_key_env, f"sink {self.name}")
        self._post(orjson.dumps(pagerduty_payload(alert, key or "", self._ui_url)), {})


def pagerduty_payload(alert: Alert, routing_key: str, ui_url: str | None = None
                      ) -> dict[str, Any]:
    """An Events API v2 trigger; PagerDuty folds triggers with one dedup_key."""
    link = alert_link(ui_url, alert)
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.dedup_key,
        "payload": {
            "summary": f"[{alert.level}] {alert.title or alert.rule}"[:1024],
            "source": f"auditkeep/{alert.tenant}",
            "severity": alert.severity or "warning",
            "timestamp": alert.created,
            "component": alert.rule,
            "group": alert.tenant,
            "class": alert.tags[0] if alert.tags else alert.level,
            "custom_details": {"alert_id": alert.id, "rule": alert.rule,
                               "level": alert.level, "count": alert.count,
                               "group": alert.group, "tags": alert.tags,
                               "first_time": alert.first_time, "last_time": alert.last_time,
                               "events": alert.events[:10]},
        },
        "links": [{"href": link, "text": "Alert in auditkeep"}] if link else [],
    }


class SmtpSink:
    def __init__(self, cfg: SmtpSinkConfig, *, ui_url: str | None = None) -> None:
        self.name = cfg.name
        self._cfg = cfg
        self._ui_url = ui_url

    def send(self, alert: Alert, *, delivery_id: str = "") -> None:
        cfg = self._cfg
        msg = email_message(alert, cfg.sender, cfg.to, self._ui_url)
        try:
            with smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout) as smtp:
                if cfg.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if cfg.username_env is not None:
                    smtp.login(_env(cfg.username_env, f"sink {self.name}"),
                               _env(cfg.password_env, f"sink {self.name}"))
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"SMTP {cfg.host}: recipients refused: "
                                f"{', '.join(exc.recipients)}", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(
                exc.smtp_error, bytes) else str(exc.smtp_error)
            raise DeliveryError(f"SMTP {cfg.host}: {exc.smtp_code} {text}"[:300],
                                permanent=exc.smtp_code >= 500) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {cfg.host}:{cfg.port}: {exc}"[:300]) from None

    def close(self) -> None:
        pass


def email_message(alert: Alert, sender: str, to: tuple[str, ...],
                  ui_url: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"[auditkeep] {alert.level} {alert.title or alert.rule}"
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    lines = [f"Rule:    {alert.rule}", f"Level:   {alert.level}", f"Tenant:  {alert.tenant}",
             f"Count:   {alert.count}", f"First:   {alert.first_time}",
             f"Last:    {alert.last_time}", f"Alert:   {alert.id}"]
    lines += [f"Group:   {k} = {v}" for k, v in alert.group.items()]
    if alert.tags:
        lines.append(f"Tags:    {', '.join(alert.tags)}")
    link = alert_link(ui_url, alert)
    if link:
        lines += ["", link]
    msg.set_content("\n".join(lines) + "\n")
    return msg


def build_sink(cfg: SinkConfig, *, ui_url: str | None = None,
               clock: Callable[[], float] = time.time) -> Sink:
    """The runtime sink for one configured sink."""
    if isinstance(cfg, WebhookSinkConfig):
        return WebhookSink(cfg, clock=clock)
    if isinstance(cfg, SlackSinkConfig):
        return SlackSink(cfg, ui_url=ui_url)
    if isinstance(cfg, SmtpSinkConfig):
        return SmtpSink(cfg, ui_url=ui_url)
    return PagerDutySink(cfg, ui_url=ui_url)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


__all__ = ["DELIVERY_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "DeliveryError",
           "PagerDutySink", "Sink", "SlackSink", "SmtpSink", "WebhookSink", "alert_link",
           "build_sink", "email_message", "pagerduty_payload", "sign", "slack_payload",
           "verify_signature"]
