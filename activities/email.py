"""Email through an SMTP server: approvals asked, reminders and escalations, and how incidents end.

Phases in between (Gathering, Executing ...) are left to the webhook and Slack: a mailbox gets what a
person must act on or should know. STARTTLS (on by default) uses the system's trusted CAs; a login
is made only when REMEDIATOR_SMTP_USERNAME is set, and never without STARTTLS.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from activities.config import Settings
from activities.notify_channel import ChannelFailure, asking, outcome
from workflows.notifications import NotifyReceipt, PhaseChange


class EmailChannel:
    name = "email"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def send(self, change: PhaseChange, receipt: NotifyReceipt) -> bool:
        if not (asking(change) or outcome(change) or change.level > 0):
            return False
        await asyncio.to_thread(self._deliver, message(change, self._settings))
        return True

    def _deliver(self, mail: EmailMessage) -> None:
        s = self._settings
        where = f"SMTP {s.smtp_host}:{s.smtp_port}"
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds) as smtp:
                smtp.ehlo()
                if s.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if s.smtp_username:
                    if not s.smtp_starttls:
                        raise ChannelFailure(f"{where}: no login without STARTTLS", permanent=True)
                    smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
                smtp.send_message(mail)
        except smtplib.SMTPNotSupportedError as err:
            raise ChannelFailure(f"{where}: {err}", permanent=True) from err
        except smtplib.SMTPRecipientsRefused as err:
            codes = [code for code, _ in err.recipients.values()]
            raise ChannelFailure(
                f"{where} refused the recipients: {err.recipients}", _permanent(codes)
            ) from err
        except smtplib.SMTPResponseException as err:
            raise ChannelFailure(
                f"{where} answered {err.smtp_code} {err.smtp_error!r}", _permanent([err.smtp_code])
            ) from err
        except ssl.SSLError as err:
            raise ChannelFailure(f"{where}: TLS failed: {err}", permanent=True) from err
        except (smtplib.SMTPException, OSError) as err:
            raise ChannelFailure(f"{where} unreachable: {err}") from err


def _permanent(codes: list[int]) -> bool:
    """5xx is the server's final no; 4xx asks to try again later."""
    return all(code >= 500 for code in codes)


def message(change: PhaseChange, settings: Settings) -> EmailMessage:
    mail = EmailMessage()
    what = "approval needed" if asking(change) and change.level == 0 else change.message
    mail["Subject"] = f"[Remediator] {change.alert_name} on {change.service or '(no service)'}: {what}"
    mail["From"] = settings.smtp_from
    mail["To"] = ", ".join(settings.smtp_to)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or None)
    mail.set_content(body(change))
    return mail


def body(change: PhaseChange) -> str:
    lines = [
        f"Incident:    {change.incident_id}",
        f"Phase:       {change.phase.value}",
        f"Event:       {change.message}" + (f" ({change.detail})" if change.detail else ""),
        f"Alert:       {change.alert_name}",
        f"Service:     {change.service or '(none)'}",
        f"Environment: {change.environment or '(none)'}",
        f"Severity:    {change.severity or '(none)'}",
    ]
    if change.diagnosis:
        lines += ["", "Diagnosis:", f"  {change.diagnosis}"]
    if change.preview:
        lines += ["", "Plan and preview:", *(f"  {line}" for line in change.preview.splitlines())]
    if change.decisions:
        lines += ["", "Decisions:", *(f"  {d}" for d in change.decisions)]
    if asking(change):
        risk = f" ({change.risk} risk)" if change.risk else ""
        lines += [
            "",
            f"Needs {change.approvers_required} distinct approver(s){risk}. Decide with:",
            f"  remediator approve {change.incident_id}",
            f"  remediator reject {change.incident_id} --reason '...'",
        ]
    return "\n".join(lines) + "\n"
