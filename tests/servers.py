"""Helpers for tests that take a shared server (PostgreSQL, RabbitMQ) away for a while.

They always bring it back, in a `finally`, and wait until it answers again: the servers
are shared with the rest of the suite, the next CI run and the developer's session.
"""

import contextlib
import subprocess
import time
from pathlib import Path


def _wait_until(command: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if subprocess.run(command, capture_output=True).returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{' '.join(command)} did not succeed within {timeout_s}s")


def _postgres_cluster() -> str:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
    return versions[-1]


@contextlib.contextmanager
def postgres_stopped():
    version = _postgres_cluster()
    ctl = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]
    subprocess.run([*ctl, "stop", "-m", "fast"], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run([*ctl, "start"], check=False, capture_output=True)
        _wait_until(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], 60)


@contextlib.contextmanager
def rabbitmq_stopped():
    """Stop the RabbitMQ application (the Erlang node stays up, so it comes back fast)."""
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["rabbitmqctl", "start_app"], check=False, capture_output=True)
        _wait_until(["rabbitmqctl", "await_startup"], 120)
