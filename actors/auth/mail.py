"""Mail the auth service sends (address verification, password reset, "someone tried to
register with your address"): the texts, and the outbox sender that delivers them over SMTP.

Use cases only queue a mail (a row in mail_outbox, in their own transaction); `MailOutbox`
sends it. While the SMTP server is away the row waits and is retried with a doubling delay,
so a request never fails, nor loses its mail, because of SMTP.
"""

import asyncio
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib
import asyncpg

from actors.auth import store
from actors.auth.settings import AuthSettings
from actors.common.db import CONNECTION_ERRORS
from actors.common.logging import get_logger
from actors.common.loop import BackgroundLoop
from actors.common.retry import Backoff

log = get_logger("mail")

SMTP_ERRORS = (aiosmtplib.SMTPException, OSError, TimeoutError)


@dataclass(frozen=True)
class Mail:
    recipient: str
    subject: str
    body: str


def _hours(seconds: int) -> str:
    hours = max(round(seconds / 3600), 1)
    return f"{hours} hour" + ("s" if hours != 1 else "")


def verification_mail(recipient: str, public_url: str, token: str, ttl_s: int) -> Mail:
    return Mail(recipient, "Confirm your e-mail address for Orderflow", (
        "Welcome to Orderflow.\n\n"
        "Open this link to confirm that this address is yours; after that your account shows\n"
        "the orders placed with it:\n\n"
        f"  {public_url.rstrip('/')}/verify-email?token={token}\n\n"
        f"The link works once, for {_hours(ttl_s)}.\n\n"
        "If you did not register, do not open the link: it would give whoever registered your\n"
        "address access to the orders placed with it. Just ignore this mail.\n"
    ))


def already_registered_mail(recipient: str, public_url: str) -> Mail:
    return Mail(recipient, "Someone tried to register with your address", (
        "Someone (perhaps you) tried to register an Orderflow account with this address, which\n"
        "already has one. Nothing was changed.\n\n"
        f"To sign in, go to {public_url.rstrip('/')}/ ; if you forgot your password, reset it there.\n"
        "If it was not you, you need not do anything.\n"
    ))


def password_reset_mail(recipient: str, public_url: str, token: str, ttl_s: int) -> Mail:
    return Mail(recipient, "Reset your Orderflow password", (
        "Open this link to choose a new password for your Orderflow account:\n\n"
        f"  {public_url.rstrip('/')}/reset-password?token={token}\n\n"
        f"The link works once, for {_hours(ttl_s)}. Setting a new password signs you out everywhere.\n"
        "If you did not ask for this, ignore this mail: your password stays as it is.\n"
    ))


class SmtpSender:
    def __init__(self, settings: AuthSettings):
        self.settings = settings

    async def send(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"] = self.settings.smtp_from
        message["To"] = mail.recipient
        message["Subject"] = mail.subject
        message.set_content(mail.body)
        s = self.settings
        await aiosmtplib.send(
            message, hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_username, password=s.smtp_password,
            start_tls=s.smtp_starttls, timeout=s.smtp_timeout_s,
        )


def _permanent(exc: Exception) -> bool:
    """The server refused this mail for good (5yz): retrying cannot help. A 4yz (greylisting,
    a full mailbox) means "try again later" (RFC 5321 4.2.1)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(_permanent(refused) for refused in exc.recipients)
    return isinstance(exc, aiosmtplib.SMTPResponseException) and 500 <= exc.code < 600


class MailOutbox:
    """Sends mail_outbox rows, oldest first, in a background loop woken when a mail is
    queued. Every replica runs one; FOR UPDATE SKIP LOCKED keeps two from sending the same
    mail."""

    def __init__(self, pool: asyncpg.Pool, sender: SmtpSender, *, wake: asyncio.Event, poll_s: float,
                 max_backoff_s: float):
        self.pool = pool
        self.sender = sender
        self.max_backoff_s = max_backoff_s
        # False from a failed attempt to reach the SMTP server until one succeeds (readiness).
        self.smtp_ok = True
        self.loop = BackgroundLoop(
            "mail-outbox", self.send_due, idle_s=poll_s, wake=wake,
            transient=(*SMTP_ERRORS, *CONNECTION_ERRORS),
            backoff=Backoff(initial_s=min(1.0, max_backoff_s), max_s=max_backoff_s),
        )

    def start(self) -> None:
        self.loop.start()

    async def stop(self) -> None:
        await self.loop.stop()

    async def send_due(self) -> None:
        """Send every mail due, until none is or the loop is stopping."""
        while await self.send_one() and not self.loop.stopping.is_set():
            pass

    async def send_one(self) -> bool:
        """Send the oldest mail due; False when none is. A mail refused for now waits its own
        doubling delay, so the mail behind it goes on; an error of the server itself (away,
        refusing the sender) is raised after the mail was put back with the error noted."""
        failure: Exception | None = None
        async with self.pool.acquire() as conn, conn.transaction():
            row = await store.next_mail(conn)
            if row is None:
                return False
            try:
                await self.sender.send(Mail(row["recipient"], row["subject"], row["body"]))
            except SMTP_ERRORS as exc:
                if _permanent(exc):
                    log.error("mail %s refused for good, dropped: %s", row["id"], exc)
                    await store.mail_sent(conn, row["id"])
                else:
                    retry_in_s = min(2.0 ** row["attempts"], self.max_backoff_s)
                    await store.mail_failed(conn, row["id"], f"{exc.__class__.__name__}: {exc}", retry_in_s)
                    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
                        log.warning("mail %s refused for now (%s); retrying in %.0fs", row["id"], exc, retry_in_s)
                    else:
                        failure = exc
            else:
                await store.mail_sent(conn, row["id"])
        self.smtp_ok = failure is None
        if failure is not None:
            raise failure
        return True
