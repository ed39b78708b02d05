"""E-mail for notifications: a small `Mailer` protocol and its SMTP implementation (smtplib).

The sweeper drains the outbox (notification rows with `email_to` set and `emailed_at` NULL) in
batches: it locks a batch (`FOR UPDATE SKIP LOCKED`, so two sweepers never hold the same rows),
sends it over one SMTP connection, stamps `emailed_at` (or counts the failed attempt) and commits.
Delivery is at least once: a sweeper killed between sending and committing sends that batch again.

Connection security (`SMTP_SECURITY`): `none` (a relay on the internal network), `starttls`
(upgrade on the submission port, usually 587) or `ssl` (implicit TLS, usually 465); the server's
certificate is always verified, against the system's CAs or `SMTP_CA_FILE` (a private CA).
`SMTP_USER` / `SMTP_PASSWORD` log in (AUTH) — refused without TLS unless the host is the local
machine, so a password never crosses the network in clear. Links in the mail use `PUBLIC_URL`:
the sweeper has no request to take the site's address from.
"""
from __future__ import annotations

import smtplib
import ssl
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


SECURITY = ("none", "starttls", "ssl")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class SmtpConfigError(ValueError):
    """The SMTP settings cannot work (say so at start-up, not at the first mail)."""


class SmtpMailer:
    """SMTP to the district's mail gateway. `base_url`, when set, is put in the body so the
    recipient can open the application; `security`, `username`/`password` and `ca_file` as in
    the module docstring."""

    def __init__(self, host: str, port: int = 25, sender: str = "parkflow@localhost", *,
                 base_url: str | None = None, timeout: float = 10.0, security: str = "none",
                 username: str | None = None, password: str | None = None, ca_file: str | None = None):
        if security not in SECURITY:
            raise SmtpConfigError(f"SMTP_SECURITY must be one of {', '.join(SECURITY)}, not {security!r}")
        if username and security == "none" and host not in LOCAL_HOSTS:
            raise SmtpConfigError("SMTP_USER is set but SMTP_SECURITY is none: the password would "
                                  "cross the network in clear; use starttls or ssl")
        self.host, self.port, self.sender = host, port, sender
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout = timeout
        self.security = security
        self.username, self.password = username or None, password or ""
        self.ca_file = ca_file or None

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)  # verifies the certificate and host name

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                  context=self._context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.security == "starttls":
                smtp.starttls(context=self._context())
            if self.username:
                smtp.login(self.username, self.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

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
            with self._connect() as smtp:
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
    """The SMTP mailer configured by SMTP_HOST / SMTP_PORT / SMTP_FROM / SMTP_SECURITY /
    SMTP_USER / SMTP_PASSWORD / SMTP_CA_FILE / SMTP_TIMEOUT, links to PUBLIC_URL (None: no e-mail)."""
    host = config.get("SMTP_HOST")
    if not host:
        return None
    security = (config.get("SMTP_SECURITY") or "none").lower()
    default_port = {"ssl": 465, "starttls": 587}.get(security, 25)
    return SmtpMailer(host, int(config.get("SMTP_PORT") or default_port),
                      config.get("SMTP_FROM") or "parkflow@localhost",
                      base_url=config.get("PUBLIC_URL"), security=security,
                      username=config.get("SMTP_USER"), password=config.get("SMTP_PASSWORD"),
                      ca_file=config.get("SMTP_CA_FILE"), timeout=float(config.get("SMTP_TIMEOUT") or 10))
