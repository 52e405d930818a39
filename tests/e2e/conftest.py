"""The whole stack, started exactly as `make run` starts it (`orderflow run`), on ports,
a database and an exchange of its own, and stopped again at the end."""

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aio_pika
import httpx
import pytest

from actors.common.db import drop_database
from actors.common.settings import CommonSettings
from deployments.stack import StackSettings, free_port, stack_processes
from tests.support import remove_redis_keys

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output"
REQUEST_TIMEOUT_S = 15  # Serve's; the gateway answers its 504 problem 5 s sooner


class Stack:
    command = ("run", "--no-seed")

    def __init__(self, tmp: Path):
        suffix = uuid.uuid4().hex[:8]
        self.database_url = f"postgresql://postgres@127.0.0.1:5432/orders_e2e_{suffix}"
        self.auth_database_url = f"postgresql://postgres@127.0.0.1:5432/auth_e2e_{suffix}"
        self.exchange = f"orders_e2e_{suffix}"
        self.notifications_database_url = f"postgresql://postgres@127.0.0.1:5432/notifications_e2e_{suffix}"
        self.notifications_queue = f"notifications_e2e_{suffix}"
        self.redis_namespace = f"orderflow_e2e_{suffix}"
        self.amqp_url = "amqp://guest:guest@127.0.0.1:5672/"
        self.settings = StackSettings(
            run_dir=tmp / "run", serve_port=free_port(), gateway_port=free_port(), gateway_tls_port=free_port()
        )
        self.env = {
            **os.environ,
            "ORDERS_DATABASE_URL": self.database_url,
            "AUTH_DATABASE_URL": self.auth_database_url,
            "EVENTS_EXCHANGE": self.exchange,
            "NOTIFY_DATABASE_URL": self.notifications_database_url,
            "NOTIFY_QUEUE": self.notifications_queue,
            "REDIS_NAMESPACE": self.redis_namespace,
            "REPORTS_DIR": str(tmp / "reports"),
            "ANALYTICS_SYNC_INTERVAL_S": "1",
            "ORDERS_RELAY_POLL_S": "0.5",
            # Short enough for a test to outlast it (a WebSocket must), long for everything else.
            "ORDERFLOW_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
            "NOTIFY_WS_HEARTBEAT_S": "2",
            # Cheaper hashing keeps the many logins of the tests quick; the cost is a setting.
            "AUTH_BCRYPT_ROUNDS": "8",
            "ORDERFLOW_RUN_DIR": str(self.settings.run_dir),
            "ORDERFLOW_SERVE_PORT": str(self.settings.serve_port),
            "ORDERFLOW_GATEWAY_PORT": str(self.settings.gateway_port),
            "ORDERFLOW_GATEWAY_TLS_PORT": str(self.settings.gateway_tls_port),
            # The development mail sink `orderflow run` starts (a `make run` may hold 8025).
            "ORDERFLOW_MAIL_SINK_PORT": str(free_port()),
            # HAProxy's own listeners, fixed by default: a `make run` may hold those.
            "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
            "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
            "PYTHONUNBUFFERED": "1",
            # Ray's metrics agent (8090 by default; a `make run` may hold it).
            "ORDERFLOW_METRICS_PORT": str(free_port()),
            # The exporters `orderflow run` starts (deployments/exporters.py), likewise.
            "ORDERFLOW_POSTGRES_EXPORTER_PORT": str(free_port()),
            "ORDERFLOW_REDIS_EXPORTER_PORT": str(free_port()),
            "ORDERFLOW_NGINX_EXPORTER_PORT": str(free_port()),
        }
        self.url = self.settings.gateway_url
        OUTPUT.mkdir(exist_ok=True)
        self.log_path = OUTPUT / f"e2e-stack-{suffix}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        orderflow = Path(sys.executable).with_name("orderflow")
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [str(orderflow), *self.command], env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"orderflow run exited with {self.process.returncode}:\n{self.tail()}")
            if "orderflow: ready." in self.log_path.read_text():
                return
            time.sleep(1)
        pytest.fail(f"the stack was not ready within 300s:\n{self.tail()}")

    def stop(self) -> int:
        """Stop it as a person does, with Ctrl-C; returns the exit code."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(120)
        finally:
            self.log.close()

    def processes(self) -> list[int]:
        """The live processes the stack started."""
        return stack_processes(self.settings)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])


def remove_stack_data(stack: Stack) -> None:
    """The databases, Redis keys, exchange and queues of `stack`."""
    import asyncio

    asyncio.run(_clean_up(stack))


async def _clean_up(stack):
    await drop_database(stack.database_url)
    await drop_database(stack.auth_database_url)
    await drop_database(stack.notifications_database_url)
    await remove_redis_keys(CommonSettings().redis_url, stack.redis_namespace)
    connection = await aio_pika.connect(stack.amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.exchange_delete(stack.exchange)
        from actors.notification.settings import NotificationSettings
        from actors.notification.consumer import dead_letter_queue_name, retry_queue_name

        queue = stack.notifications_queue
        for name in [queue, dead_letter_queue_name(queue),
                     *(retry_queue_name(queue, d) for d in NotificationSettings().retry_delays_s)]:
            await channel.queue_delete(name)


def running(stack: Stack):
    """Start `stack`, yield it, then stop it and remove its processes and data (a stack that
    fails to start too)."""
    try:
        stack.start()
        yield stack
    finally:
        code = stack.stop() if stack.process is not None else None
        leftovers = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (leftovers := stack.processes()):
            time.sleep(1)
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        remove_stack_data(stack)
        assert code == 0, f"orderflow {stack.command[0]} exited with {code}:\n{stack.tail()}"
        assert not leftovers, f"processes left behind after Ctrl-C: {leftovers}"


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    yield from running(Stack(tmp_path_factory.mktemp("e2e")))


@pytest.fixture(scope="session")
def admin_token(stack) -> str:
    from deployments.stack import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD

    response = httpx.post(f"{stack.url}/auth/login", json={"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture
def client(stack, admin_token):
    """Warehouse staff (the bootstrap admin), the usual caller of the orders API."""
    with httpx.Client(base_url=stack.url, timeout=10, headers={"Authorization": f"Bearer {admin_token}"}) as client:
        yield client


@pytest.fixture
def anonymous(stack):
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        yield client
