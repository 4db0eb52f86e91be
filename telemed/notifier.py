"""Where notifications go besides the bell: the log (default) or mail (TELEMED_SMTP_URL).

The in-app notification row is always written (services/notifications.notify) and pushed
live after commit. A backend here is a second channel: the jobs queue a
NotificationDelivery row for it inside their transaction, and the outbox
(telemed/jobs/outbox.py) sends it after the commit and records the outcome.

``TELEMED_SMTP_URL`` looks like ``smtp://user:password@host:587?starttls=yes`` (plain
SMTP, optionally upgraded with STARTTLS) or ``smtps://user:password@host:465`` (TLS from
the first byte). User and password are optional.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingMessage:
    notification_id: int
    user_id: int
    username: str
    display_name: str
    address: str | None  # the user's e-mail address, when one is on file
    subject: str
    body: str
    link: str | None = None


class Undeliverable(Exception):
    """A delivery that no retry can make succeed (no address on file, address refused)."""


class NotifierBackend(Protocol):
    channel: str

    def send(self, message: OutgoingMessage) -> None:
        """Deliver or raise; :class:`Undeliverable` means do not try again."""


class LogNotifier:
    """The default: one log line per notification (identifiers are masked by the log)."""

    channel = "log"

    def send(self, message: OutgoingMessage) -> None:
        log.info(
            "notification %s for %s (user %s): %s",
            message.notification_id,
            message.username,
            message.user_id,
            message.subject,
        )


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"TELEMED_SMTP_URL must start with smtp:// or smtps://, not {url!r}")
        if not parts.hostname:
            raise ValueError("TELEMED_SMTP_URL names no host")
        query = parse_qs(parts.query)
        starttls = query.get("starttls", ["no"])[-1].lower() in ("1", "yes", "true", "on")
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=implicit,
            starttls=starttls and not implicit,
        )


class SmtpNotifier:
    """Sends each notification as a plain-text mail to the user's address."""

    channel = "smtp"

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        mail_from: str,
        base_url: str | None = None,
        timeout: float = 20.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings
        self.mail_from = mail_from
        self.base_url = (base_url or "").rstrip("/")
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()

    def _mail(self, message: OutgoingMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.mail_from
        mail["To"] = formataddr((message.display_name, message.address or ""))
        mail["Subject"] = message.subject
        mail["Message-ID"] = make_msgid(idstring=f"telemed-{message.notification_id}")
        text = message.body
        if message.link:
            text += f"\n\n{self.base_url}{message.link}"
        mail.set_content(text)
        return mail

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.implicit_tls:
            return smtplib.SMTP_SSL(s.host, s.port, timeout=self.timeout, context=self.ssl_context)
        client = smtplib.SMTP(s.host, s.port, timeout=self.timeout)
        if s.starttls:
            client.starttls(context=self.ssl_context)
        return client

    def send(self, message: OutgoingMessage) -> None:
        if not message.address:
            raise Undeliverable(f"user {message.username} has no e-mail address on file")
        with self._connect() as client:
            if self.settings.username:
                client.login(self.settings.username, self.settings.password or "")
            try:
                client.send_message(self._mail(message))
            except smtplib.SMTPRecipientsRefused as refused:
                raise Undeliverable(f"address refused: {refused.recipients}") from None


def notifier_from_config(config) -> NotifierBackend:
    """The backend the configuration asks for: SMTP when TELEMED_SMTP_URL is set."""
    url = config.get("TELEMED_SMTP_URL")
    if not url:
        return LogNotifier()
    return SmtpNotifier(
        SmtpSettings.from_url(url),
        mail_from=config.get("TELEMED_MAIL_FROM") or "telemed@localhost",
        base_url=config.get("TELEMED_PUBLIC_URL"),
    )


def current_notifier() -> NotifierBackend:
    """The app's notifier (tests may put their own in ``app.extensions['telemed_notifier']``)."""
    from flask import current_app

    backend = current_app.extensions.get("telemed_notifier")
    if backend is None:
        backend = notifier_from_config(current_app.config)
        current_app.extensions["telemed_notifier"] = backend
    return backend
