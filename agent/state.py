"""What the agent keeps on disk, in its config directory (~/.config/orderflow/), each file
readable by its owner only and replaced atomically:

    session                  the rotating refresh token (never the password) and the
                             gateway it belongs to, as one JSON object: the token is only
                             ever sent to that gateway
    last-notification-id     the id of the last notification shown, so a restart or a
                             reconnect catches up from there and never shows one twice
    agent.lock               held (flock) by the running agent, with its pid: a second one
                             (autostart and the systemd unit both installed) would show
                             every notification twice
"""

import fcntl
import json
import os
from pathlib import Path
from typing import NamedTuple

SESSION = "session"
LAST_ID = "last-notification-id"
RUN_LOCK = "agent.lock"


class AlreadyRunning(RuntimeError):
    pass


class Session(NamedTuple):
    server: str
    refresh_token: str


class AgentState:
    def __init__(self, directory: Path):
        self.directory = directory
        self._run_lock: int | None = None

    def lock_for_running(self) -> None:
        """Take the lock of the one running agent, for as long as this process lives;
        AlreadyRunning when another agent holds it."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.directory / RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(f"another orderflow-agent (pid {holder}) is running with {self.directory}") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._run_lock = fd

    def _write(self, name: str, text: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self.directory / name
        temporary = target.with_name(f".{name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            # No fsync: it cost hundreds of ms under load and delayed the next notification;
            # after a power loss a torn file reads as "no last id", which never re-shows one.
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        os.chmod(temporary, 0o600)  # whatever the umask
        os.replace(temporary, target)

    def _read(self, name: str) -> str | None:
        try:
            return (self.directory / name).read_text().strip() or None
        except FileNotFoundError:
            return None

    @property
    def session(self) -> Session | None:
        """The saved session; None when there is none, or it is unreadable."""
        try:
            saved = json.loads(self._read(SESSION) or "null")
            return Session(server=str(saved["server"]), refresh_token=str(saved["refresh_token"]))
        except (ValueError, TypeError, KeyError):
            return None

    def save_session(self, session: Session) -> None:
        self._write(SESSION, json.dumps(session._asdict()))

    def forget_session(self) -> None:
        (self.directory / SESSION).unlink(missing_ok=True)

    @property
    def last_id(self) -> int | None:
        text = self._read(LAST_ID)
        return int(text) if text and text.isascii() and text.isdigit() else None

    def save_last_id(self, notification_id: int) -> None:
        self._write(LAST_ID, str(notification_id))
