"""What the benchmarks share: a bench's own databases, exchange, Redis namespace and signing
key; starting the bare baseline and the stack as `make run` starts it; wrk and its figures."""

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aio_pika
import httpx

from actors.auth.keys import generate_key_file
from actors.auth.settings import MIGRATIONS as AUTH_MIGRATIONS
from actors.common.db import drop_database, ensure_database, migrate
from actors.common.redis import create_redis
from actors.common.settings import CommonSettings
from actors.orders.settings import MIGRATIONS as ORDERS_MIGRATIONS
from deployments.stack import (
    DEV_ADMIN_EMAIL,
    DEV_ADMIN_PASSWORD,
    StackSettings,
    free_port,
    stack_processes,
    wait_ready,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
BIN = Path(sys.executable).parent
ADMIN = {"email": DEV_ADMIN_EMAIL, "password": DEV_ADMIN_PASSWORD}


class BenchWorld:
    """Databases, exchange and Redis keys of one bench run, and one signing key shared by
    every server it starts, so a token from one is accepted by all of them."""

    def __init__(self, name: str):
        suffix = uuid.uuid4().hex[:8]
        self.work = Path(tempfile.mkdtemp(prefix=f"orderflow-{name}-"))
        self.orders_db = f"postgresql://postgres@127.0.0.1:5432/{name}_orders_{suffix}"
        self.auth_db = f"postgresql://postgres@127.0.0.1:5432/{name}_auth_{suffix}"
        self.exchange = f"{name}_{suffix}"
        self.namespace = f"{name}_{suffix}"
        key_file = self.work / "auth-ed25519.pem"
        generate_key_file(key_file)
        self.env = os.environ | {
            "ORDERS_DATABASE_URL": self.orders_db,
            "AUTH_DATABASE_URL": self.auth_db,
            "AUTH_SIGNING_KEY_FILE": str(key_file),
            "AUTH_BOOTSTRAP_ADMIN_EMAIL": DEV_ADMIN_EMAIL,
            "AUTH_BOOTSTRAP_ADMIN_PASSWORD": DEV_ADMIN_PASSWORD,
            "EVENTS_EXCHANGE": self.exchange,
            "REDIS_NAMESPACE": self.namespace,
            "LOG_LEVEL": "WARNING",
        }

    def __enter__(self) -> "BenchWorld":
        async def prepare():
            for url, migrations in [(self.orders_db, ORDERS_MIGRATIONS), (self.auth_db, AUTH_MIGRATIONS)]:
                await ensure_database(url)
                await migrate(url, migrations)

        asyncio.run(prepare())
        return self

    def __exit__(self, *exc) -> None:
        async def clean_up():
            await drop_database(self.orders_db)
            await drop_database(self.auth_db)
            connection = await aio_pika.connect(CommonSettings().amqp_url)
            async with connection:
                channel = await connection.channel()
                await channel.exchange_delete(self.exchange)
            redis = create_redis(CommonSettings().redis_url)
            async for key in redis.scan_iter(match=f"{self.namespace}:*"):
                await redis.delete(key)
            await redis.aclose()

        asyncio.run(clean_up())


class Target:
    def __init__(self, name: str, base_url: str, process: subprocess.Popen, stack: StackSettings | None = None):
        self.name, self.base_url, self.process, self.stack = name, base_url, process, stack

    def login(self) -> str:
        response = httpx.post(f"{self.base_url}/auth/login", json=ADMIN, timeout=30)
        response.raise_for_status()
        return response.json()["access_token"]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(120)
        if self.stack is not None:
            for pid in stack_processes(self.stack):
                os.kill(pid, signal.SIGKILL)


def stop_on_signals() -> None:
    """Ctrl-C, `kill` and `timeout` end a bench through its finally blocks, which stop the
    stacks and clusters it started. A shell starts a background job with SIGINT ignored, and
    SIGTERM would end the process at once, leaving them running."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)


def wait_serving(process: subprocess.Popen, *urls: str, timeout_s: float = 300) -> None:
    """Until every url answers 200; fails at once when the server process has exited."""
    def exited() -> str | None:
        return f"its server exited with {process.returncode}" if process.poll() is not None else None

    for url in urls:
        wait_ready(url, timeout_s, check_failed=exited)


def start_bare(world: BenchWorld) -> Target:
    """The orders and auth apps under one bare uvicorn process: no Serve, no nginx."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(BIN / "python"), str(HERE / "bare_server.py"), "--port", str(port)],
        env=world.env | {"AUTH_URL": f"{url}/auth"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_serving(process, f"{url}/orders/ready", f"{url}/auth/ready")
    return Target("bare uvicorn", url, process)


def start_stack(name: str, world: BenchWorld, *, throughput_mode: bool = True) -> Target:
    """`orderflow run` as `make run` starts it; the target is the gateway."""
    run_dir = world.work / name.replace(" ", "_").replace("+", "")
    settings = StackSettings(run_dir=run_dir, serve_port=free_port(), gateway_port=free_port())
    env = world.env | {
        "ORDERFLOW_RUN_DIR": str(run_dir),
        "ORDERFLOW_SERVE_PORT": str(settings.serve_port),
        "ORDERFLOW_GATEWAY_PORT": str(settings.gateway_port),
        "ORDERFLOW_GATEWAY_TLS_PORT": "",  # the benchmarks go over plain HTTP
        "ORDERFLOW_THROUGHPUT_MODE": "1" if throughput_mode else "0",
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    log = (run_dir / "stack.log").open("w")
    process = subprocess.Popen([str(BIN / "orderflow"), "run", "--no-seed"], env=env, stdout=log, stderr=log)
    wait_serving(process, f"{settings.gateway_url}/orders/ready", f"{settings.gateway_url}/auth/ready")
    return Target(name, settings.gateway_url, process, settings)


def to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def post_script(body: str) -> str:
    return f"""
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
"""


def wrk_command(url: str, seconds: int, connections: int, *, script: str | None = None,
                token: str | None = None, threads: int = 2, timeout_s: int = 10) -> tuple[list[str], object]:
    """The wrk command line and the temporary Lua file it reads (keep it open while wrk runs).
    The timeout is wrk's per request (2 s by default, shorter than a queue of bcrypt logins)."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_s}s", "--latency"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    lua = tempfile.NamedTemporaryFile("w", suffix=".lua")
    if script:
        lua.write(script)
        lua.flush()
        command += ["-s", lua.name]
    return command + [url], lua


def parse_wrk(out: str) -> dict:
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", out, re.M))
    if "50" not in percentiles:
        raise RuntimeError(f"wrk measured no request:\n{out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    timeouts = re.search(r"timeout (\d+)", out)
    return {
        "timeouts": int(timeouts.group(1)) if timeouts else 0,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": to_ms(percentiles["50"]),
        "p99_ms": to_ms(percentiles["99"]),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def wrk(url: str, seconds: int, connections: int, *, script: str | None = None, token: str | None = None) -> dict:
    command, lua = wrk_command(url, seconds, connections, script=script, token=token)
    with lua:
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def serve_replicas(app: str) -> int:
    """Replicas of a Serve application running now (Ray names worker processes after the actor)."""
    prefix = f"ray::ServeReplica:{app}".encode()
    count = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            count += cmdline.read_bytes().startswith(prefix)
        except OSError:
            continue
    return count
