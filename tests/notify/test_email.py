"""Email through a real local SMTP server (aiosmtpd): plain, and STARTTLS with a login."""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from activities.config import Settings, SettingsError, load_settings
from activities.notify import NotifyActivities
from tests.notify.support import change, run_notify
from worker.devserver import free_port
from workflows.phases import Phase


@dataclass
class Mailbox:
    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


def settings(port: int, **more: Any) -> Settings:
    fields: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_from": "remediator@example.org",
        "smtp_to": ["oncall@example.org", "leads@example.org"],
        "smtp_starttls": False,
    }
    return Settings(**{**fields, **more})


async def test_an_approval_asked_is_mailed_with_what_to_decide(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    receipt = await run_notify(NotifyActivities(settings(port)), change())
    assert receipt.sent == ["email"]
    [mail] = mailbox.messages
    assert mail["Subject"] == "[Remediator] DiskFull on orders-db: approval needed"
    assert mail["From"] == "remediator@example.org"
    assert mailbox.recipients == [["oncall@example.org", "leads@example.org"]]
    body = mail.get_content().replace("\r\n", "\n")
    assert "Incident:    incident-0123456789abcdef" in body
    assert "Phase:       AwaitingApproval" in body
    assert "resource_exhaustion (0.90): /var is 97% full <WAL> & logs" in body
    assert "purge: purge-wal (destructive): would delete 42 files (3.1 GiB)" in body
    assert "Needs 2 distinct approver(s) (destructive risk)" in body
    assert "remediator approve incident-0123456789abcdef" in body


async def test_outcomes_are_mailed_and_steps_in_between_are_not(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp
    notify = NotifyActivities(settings(port))
    skipped = await run_notify(notify, change(Phase.EXECUTING))
    assert skipped.sent == [] and mailbox.messages == []
    decided = ["approved by alice via slack", "approved by bob via api: looks right"]
    await run_notify(notify, change(Phase.RESOLVED, message="verified healthy", decisions=decided))
    [mail] = mailbox.messages
    assert mail["Subject"] == "[Remediator] DiskFull on orders-db: verified healthy"
    body = mail.get_content().replace("\r\n", "\n")
    assert "Phase:       Resolved" in body
    assert "  approved by alice via slack\n  approved by bob via api: looks right" in body
    assert "remediator approve" not in body


async def test_an_unreachable_server_is_retried_and_a_refusal_is_reported() -> None:
    from temporalio.exceptions import ApplicationError

    with pytest.raises(ApplicationError, match="unreachable") as raised:
        await run_notify(NotifyActivities(settings(free_port())), change())
    assert not raised.value.non_retryable


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp.crt", directory / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


async def test_starttls_then_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert_file, key_file = _certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    logins: list[tuple[str, str]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"s3cret")

    mailbox, port = Mailbox(), free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_tls,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    controller.start()
    try:
        # The worker trusts the system's CAs, or OpenSSL's SSL_CERT_FILE: here, this test's own CA.
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
        secure = settings(port, smtp_starttls=True, smtp_username="remediator", smtp_password="s3cret")
        receipt = await run_notify(NotifyActivities(secure), change())
        assert receipt.sent == ["email"] and logins == [("remediator", "s3cret")]
        assert mailbox.messages[0]["Subject"] == "[Remediator] DiskFull on orders-db: approval needed"
        # Without STARTTLS the server refuses the mail (530), for good: reported, not retried.
        plain = await run_notify(NotifyActivities(settings(port)), change())
        assert plain.sent == [] and plain.failed[0].startswith(f"email: SMTP 127.0.0.1:{port} answered 530")
        assert len(mailbox.messages) == 1
    finally:
        controller.stop()


async def test_starttls_is_never_skipped_silently(smtp: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp  # a server that offers no STARTTLS
    receipt = await run_notify(NotifyActivities(settings(port, smtp_starttls=True)), change())
    assert receipt.sent == [] and "STARTTLS extension not supported" in receipt.failed[0]
    assert mailbox.messages == []


def test_email_settings_must_be_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMEDIATOR_SMTP_HOST", "smtp.example.org")
    with pytest.raises(SettingsError, match="email needs REMEDIATOR_SMTP_FROM and REMEDIATOR_SMTP_TO"):
        load_settings()
    monkeypatch.setenv("REMEDIATOR_SMTP_FROM", "remediator@example.org")
    monkeypatch.setenv("REMEDIATOR_SMTP_TO", "oncall@example.org, leads@example.org")
    assert load_settings().smtp_to == ["oncall@example.org", "leads@example.org"]
