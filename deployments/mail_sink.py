"""A local SMTP server for development and tests (aiosmtpd): it delivers nothing, it keeps
every message it receives, in memory and, given a folder, as one .eml file per message.

`make run` starts one and points the auth service at it (its mail is in .run/mail/); the
tests start one per test and read what the services sent over real SMTP.
"""

import email
import email.policy
import itertools
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

from actors.common.logging import get_logger

log = get_logger("mail-sink")


class MailSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 8025, folder: Path | None = None,
                 announce: Callable[[str], None] = log.info):
        self.host = host
        self.port = port
        self.folder = folder
        self.announce = announce  # told of each message: where to read it
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._controller: Controller | None = None

    @property
    def address(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> "MailSink":
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, recipient: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"].casefold() == recipient.casefold()]

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's handler hook
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)
            number = next(self._numbers)
        where = ""
        if self.folder is not None:
            path = self.folder / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.getpid()}-{number:04d}.eml"
            partial = path.with_suffix(".part")
            partial.write_bytes(envelope.content)
            partial.rename(path)  # whole files only, for whoever watches the folder
            where = f", saved as {path}"
        self.announce(f"mail to {message['To']}: {message['Subject']}{where}")
        return "250 Message accepted for delivery"
