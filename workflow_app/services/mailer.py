"""E-mail for notifications: a small `Mailer` protocol and its SMTP implementation (smtplib).

The sweeper drains the outbox (notification rows with `email_to` set and `emailed_at` NULL) in
batches: it locks a batch (`FOR UPDATE SKIP LOCKED`, so two sweepers never hold the same rows),
sends it over one SMTP connection, stamps `emailed_at` (or counts the failed attempt) and commits.
Delivery is at least once: a sweeper killed between sending and committing sends that batch again.
"""
from __future__ import annotations

import smtplib
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol, Sequence

from .notify import SHANGHAI


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str
    notification_id: int


class Mailer(Protocol):
    def send(self, mails: Sequence[Mail]) -> list[str | None]:
        """Send each mail; return None for each sent, or the error text."""


class SmtpMailer:
    """Plain SMTP to a relay (the district's mail gateway). `base_url`, when set, is put in the
    body so the recipient can open the application."""

    def __init__(self, host: str, port: int = 25, sender: str = "parkflow@localhost", *,
                 base_url: str | None = None, timeout: float = 10.0):
        self.host, self.port, self.sender = host, port, sender
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout = timeout

    def message(self, mail: Mail) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = mail.to
        msg["Subject"] = f"[园区审批] {mail.subject}"
        msg["Message-ID"] = make_msgid(idstring=f"parkflow-n{mail.notification_id}")
        msg["Date"] = format_datetime(datetime.now(SHANGHAI))
        body = mail.body
        if self.base_url:
            body += f"\n\n查看：{self.base_url}/notifications/{mail.notification_id}"
        msg.set_content(body + "\n\n（此邮件由系统自动发送，请勿直接回复）\n", charset="utf-8")
        return msg

    def send(self, mails: Sequence[Mail]) -> list[str | None]:
        out: list[str | None] = []
        if not mails:
            return out
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                for mail in mails:
                    try:
                        smtp.send_message(self.message(mail))
                        out.append(None)
                    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError,
                            smtplib.SMTPSenderRefused) as exc:  # this mail only
                        out.append(f"{type(exc).__name__}: {exc}"[:300])
        except (OSError, smtplib.SMTPException) as exc:
            # the server is down or dropped us: the mails not sent yet wait for the next pass
            out += [f"{type(exc).__name__}: {exc}"[:300]] * (len(mails) - len(out))
        return out


def from_config(config) -> SmtpMailer | None:
    """The SMTP mailer configured by SMTP_HOST / SMTP_PORT / SMTP_FROM (None: no e-mail)."""
    host = config.get("SMTP_HOST")
    if not host:
        return None
    return SmtpMailer(host, int(config.get("SMTP_PORT") or 25), config.get("SMTP_FROM") or "parkflow@localhost",
                      base_url=config.get("PUBLIC_URL"))
