"""Syslog over TCP (both framings), UDP and TLS into a real server, from raw sockets and
from Python's own `logging.handlers.SysLogHandler`."""

from __future__ import annotations

import datetime as dt
import logging
import logging.handlers
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from auditkeep.datadir import DataDir
from tests.conftest import ServerProcess, free_port, start_server

RFC5424 = (b'<134>1 2026-11-29T04:05:06.123456+01:00 web-1 billing 4242 ORDER_DEL '
           b'[audit@32473 action="orders.delete" actor="alice" outcome="success" '
           b'resource.type="order" resource.id="42"] deleted order 42')
RFC3164 = b"<38>Nov 29 04:05:06 bastion sshd[811]: Accepted publickey for bob from 10.1.2.3"


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def syslog_server(data_dir: DataDir) -> Iterator[tuple[ServerProcess, int, int]]:
    tcp, udp = free_port(), free_port()
    srv = start_server(data_dir, "--syslog-tcp", f"127.0.0.1:{tcp}", "--syslog-udp",
                       f"127.0.0.1:{udp}", "--syslog-tenant", "infra")
    yield srv, tcp, udp
    srv.stop()


def stored(srv: ServerProcess, n: int, **params: Any) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    with srv.client() as c:
        while True:
            found = c.get("/v1/events", params={"tenant": "infra", **params}).json()["events"]
            if len(found) >= n or time.monotonic() > deadline:
                return list(found)
            time.sleep(0.1)


def test_tcp_with_both_framings_keeps_every_message_and_its_raw(
        syslog_server: tuple[ServerProcess, int, int]) -> None:
    srv, tcp, _ = syslog_server
    with socket.create_connection(("127.0.0.1", tcp)) as s:
        s.sendall(b"%d %b" % (len(RFC5424), RFC5424))  # octet counting
        s.sendall(RFC3164 + b"\n")  # newline framing
        s.sendall(b"<13>just a line\n")
    (audit,) = stored(srv, 1, action="orders.delete")
    assert audit["actor"]["id"] == "alice" and audit["outcome"] == "success"
    assert audit["resource"] == {"type": "order", "id": "42"}
    assert audit["time"] == "2026-11-29T03:05:06.123456Z"
    assert audit["source"] == {"host": "web-1", "service": "billing"}
    (ssh,) = stored(srv, 1, action="syslog.sshd")
    assert ssh["actor"]["id"] == "bastion" and ssh["reason"].startswith("Accepted publickey")
    with srv.client() as c:
        raw = c.get(f"/v1/events/{audit['id']}/raw", params={"tenant": "infra"})
        assert raw.content == RFC5424
        assert raw.headers["content-type"].startswith("text/plain")
    assert len(stored(srv, 3)) == 3


def test_udp_datagrams_arrive(syslog_server: tuple[ServerProcess, int, int]) -> None:
    srv, _, udp = syslog_server
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(20):
            s.sendto(b"<14>1 - app-%d - - - - message %d" % (i, i), ("127.0.0.1", udp))
    assert len(stored(srv, 20)) == 20


def test_tls_on_the_tcp_port(data_dir: DataDir, tmp_path: Path) -> None:
    tcp = free_port()
    cert, key = self_signed(tmp_path)
    srv = start_server(data_dir, "--syslog-tcp", f"127.0.0.1:{tcp}", "--syslog-tenant",
                       "infra", "--syslog-tls-cert", str(cert), "--syslog-tls-key", str(key))
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        with socket.create_connection(("127.0.0.1", tcp)) as raw_sock, ctx.wrap_socket(
                raw_sock, server_hostname="localhost") as s:
            s.sendall(b"%d %b" % (len(RFC3164), RFC3164))
        assert stored(srv, 1, action="syslog.sshd")[0]["actor"]["id"] == "bastion"
    finally:
        srv.stop()


def test_pythons_own_syslog_handler_is_understood(
        syslog_server: tuple[ServerProcess, int, int]) -> None:
    srv, tcp, udp = syslog_server
    logger = logging.getLogger("test-syslog-producer")
    logger.propagate = False
    handlers = [logging.handlers.SysLogHandler(("127.0.0.1", udp)),
                logging.handlers.SysLogHandler(("127.0.0.1", tcp), socktype=socket.SOCK_STREAM)]
    try:
        for h in handlers:
            logger.addHandler(h)
        logger.warning("sudo: carol : COMMAND=/bin/ls")
    finally:
        for h in handlers:
            logger.removeHandler(h)
            h.close()
    found = stored(srv, 1, q="carol")
    assert found and found[0]["severity"] == "warning"
    assert found[0]["reason"] == "sudo: carol : COMMAND=/bin/ls"
