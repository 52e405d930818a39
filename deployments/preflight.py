"""What `orderflow run` and `orderflow check` look at before starting anything, so that a
newcomer hears at once what is missing and the one command that fixes it: the settings,
nginx, free ports, and PostgreSQL, Redis and RabbitMQ (started here when they are on this
machine, installed and stopped)."""

import asyncio
import logging
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import asyncpg
from pydantic import AliasChoices, ValidationError
from pydantic_settings import BaseSettings

from actors.analytics.settings import AnalyticsSettings
from actors.auth.settings import AuthSettings
from actors.common.db import with_database
from actors.common.redis import create_redis
from actors.common.settings import CommonSettings
from actors.notification.settings import NotificationSettings
from actors.orders.settings import OrdersSettings
from deployments.stack import StackSettings, find_nginx

HERE = Path(__file__).resolve().parent
SYSTEM_PACKAGES = HERE / "system-packages.sh"
LOCAL_SERVERS = HERE / "local-servers.sh"
# HAProxy's listeners in Serve's throughput mode, with Ray's defaults for these variables.
HAPROXY_PORTS = {"RAY_SERVE_HAPROXY_STATS_PORT": 8404, "RAY_SERVE_HAPROXY_METRICS_PORT": 9101}
CHECK_TIMEOUT_S = 3
# aiormq logs a failed connect itself; the check says it once, on its own line.
logging.getLogger("aiormq.connection").setLevel(logging.CRITICAL)


def as_root(command: str) -> str:
    """`command` as this user must type it: with sudo unless already root."""
    return command if os.geteuid() == 0 else f"sudo {command}"


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# --- settings -------------------------------------------------------------------------------

class BadSettings(Exception):
    """One or more settings are invalid; `lines` names each one and what is wrong."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass(frozen=True)
class Settings:
    stack: StackSettings
    common: CommonSettings
    orders: OrdersSettings
    auth: AuthSettings
    notification: NotificationSettings
    analytics: AnalyticsSettings


SETTINGS_CLASSES = {
    "stack": StackSettings, "common": CommonSettings, "orders": OrdersSettings, "auth": AuthSettings,
    "notification": NotificationSettings, "analytics": AnalyticsSettings,
}
_SECRET_WORDS = ("password", "secret", "key", "token", "url")


def load_settings() -> Settings:
    """Every settings class read from the environment; BadSettings naming each variable
    that is wrong (the same variable is named once, whichever classes share it)."""
    loaded, lines = {}, []
    for name, model in SETTINGS_CLASSES.items():
        try:
            loaded[name] = model()
        except ValidationError as exc:
            lines += [line for line in describe(exc, model) if line not in lines]
    for variable, _ in HAPROXY_PORTS.items():
        value = os.environ.get(variable)
        if value is not None and not (value.isascii() and value.isdigit() and 0 < int(value) < 65536):
            lines.append(f"{variable}: must be a port number from 1 to 65535 (got {value!r})")
    if lines:
        raise BadSettings(lines)
    return Settings(**loaded)


def describe(error: ValidationError, model: type[BaseSettings]) -> list[str]:
    """One line per invalid field: its environment variable and what is wrong with it."""
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        message = item["msg"].removeprefix("Value error, ")
        shown = "" if any(word in field for word in _SECRET_WORDS) else f" (got {item.get('input')!r})"
        lines.append(f"{setting_name(model, field)}: {message}{shown}")
    return lines


def setting_name(model: type[BaseSettings], field: str) -> str:
    """The environment variable a settings field is read from (errors name a field read
    through an alias by the alias, which is the variable already)."""
    if field not in model.model_fields:
        return field.upper()
    info = model.model_fields[field]
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    return f"{model.model_config.get('env_prefix', '')}{field}".upper()


# --- nginx and ports ------------------------------------------------------------------------

def nginx_problem(stack: StackSettings, path: str | None = None) -> str | None:
    if find_nginx(stack.nginx_binary, path) is not None:
        return None
    if stack.nginx_binary != "nginx":
        return f"ORDERFLOW_NGINX_BINARY: no nginx at {stack.nginx_binary!r}."
    return (f"nginx (the API gateway) is not installed; install it with: "
            f"{as_root(_shown(SYSTEM_PACKAGES) + ' run')}")


def stack_ports(stack: StackSettings, *, cluster: bool = False) -> dict[str, tuple[str, int]]:
    """Every address the stack listens on, by the variable that sets it. A `cluster`'s nodes
    pick their metrics agents' ports themselves, and run no HAProxy (throughput_mode off)."""
    ports = {
        "ORDERFLOW_GATEWAY_PORT": (stack.gateway_host, stack.gateway_port),
        "ORDERFLOW_GATEWAY_STATUS_PORT": ("127.0.0.1", stack.gateway_status_port),
        "ORDERFLOW_SERVE_PORT": (stack.serve_host, stack.serve_port),
    }
    if not cluster:
        ports["ORDERFLOW_METRICS_PORT"] = (stack.serve_host, stack.metrics_port)
    if stack.gateway_tls_port:
        ports["ORDERFLOW_GATEWAY_TLS_PORT"] = (stack.gateway_host, stack.gateway_tls_port)
    if not os.environ.get("AUTH_SMTP_HOST"):  # else no local mail sink is started
        ports["ORDERFLOW_MAIL_SINK_PORT"] = (stack.serve_host, stack.mail_sink_port)
    if stack.throughput_mode:
        for variable, default in HAPROXY_PORTS.items():
            ports[variable] = ("127.0.0.1", int(os.environ.get(variable, default)))
    return ports


def port_problems(stack: StackSettings, *, cluster: bool = False) -> list[str]:
    problems = []
    for variable, (host, port) in stack_ports(stack, cluster=cluster).items():
        if reason := _cannot_listen(host, port):
            problems.append(f"{host}:{port} ({variable}) {reason}; set {variable} to a free port.")
    return problems


def _cannot_listen(host: str, port: int) -> str | None:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
            sock.bind((host, port))
    except OSError as exc:
        return "is taken" if exc.errno == 98 else f"cannot be listened on ({exc.strerror or exc})"
    return None


# --- PostgreSQL, Redis, RabbitMQ ------------------------------------------------------------

@dataclass(frozen=True)
class Server:
    name: str
    setting: str  # the variable its URL comes from
    url: str
    local_name: str  # as deployments/local-servers.sh calls it
    standard_port: int

    @property
    def shown_url(self) -> str:
        parts = urlsplit(self.url)
        return parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl()

    @property
    def on_this_machine(self) -> bool:
        """Local, on the port deployments/local-servers.sh starts it on."""
        parts = urlsplit(self.url)
        return (parts.hostname in (None, "", "127.0.0.1", "localhost", "::1")
                and (parts.port or self.standard_port) == self.standard_port)


def servers(settings: Settings) -> list[Server]:
    found = [
        Server("PostgreSQL", "ORDERS_DATABASE_URL", settings.orders.database_url, "postgresql", 5432),
        Server("PostgreSQL", "AUTH_DATABASE_URL", settings.auth.database_url, "postgresql", 5432),
        Server("PostgreSQL", "NOTIFY_DATABASE_URL", settings.notification.database_url, "postgresql", 5432),
        Server("Redis", "REDIS_URL", settings.common.redis_url, "redis", 6379),
        Server("RabbitMQ", "AMQP_URL", settings.common.amqp_url, "rabbitmq", 5672),
    ]
    unique, seen = [], set()
    for server in found:  # the three databases usually live on one server: ask it once
        key = (server.name, urlsplit(server.url).netloc)
        if key not in seen:
            seen.add(key)
            unique.append(server)
    return unique


async def _answers(server: Server) -> None:
    if server.name == "PostgreSQL":
        conn = await asyncpg.connect(with_database(server.url, "postgres"), timeout=CHECK_TIMEOUT_S)
        await conn.close()
    elif server.name == "Redis":
        # The services' own client, so what passes here works there (TLS, auth, database).
        redis = create_redis(server.url, timeout_s=CHECK_TIMEOUT_S)
        try:
            await redis.ping()
        finally:
            await redis.aclose()
    else:
        conn = await aio_pika.connect(server.url, timeout=CHECK_TIMEOUT_S)
        await conn.close()


async def unanswered(candidates: list[Server]) -> list[tuple[Server, str]]:
    """The servers that do not answer, each with why."""
    results = await asyncio.gather(*(_answers(s) for s in candidates), return_exceptions=True)
    return [(server, f"{result.__class__.__name__}: {result}".rstrip(": "))
            for server, result in zip(candidates, results, strict=True) if isinstance(result, BaseException)]


def server_problem(server: Server, reason: str) -> str:
    if _listening(server):  # it runs: the URL (scheme, TLS, password, database) is wrong for it
        fix = f"check {server.setting} (scheme, TLS, user and password) against that server"
    elif server.on_this_machine:
        fix = (f"start it with: {as_root(_shown(LOCAL_SERVERS) + ' ' + server.local_name)} "
               f"(`make run` does it for you as root), or point {server.setting} at a running server")
    else:
        fix = f"start it, or point {server.setting} at a running server"
    return f"{server.name} does not answer at {server.shown_url} ({server.setting}): {reason}; {fix}."


def _listening(server: Server) -> bool:
    parts = urlsplit(server.url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or server.standard_port), 1):
            return True
    except OSError:
        return False


def start_local_servers(failing: list[Server]) -> bool:
    """Start the failing servers that belong on this machine with local-servers.sh (it
    says what to do when it cannot: not root, not installed). True if it ran and succeeded."""
    names = sorted({server.local_name for server in failing if server.on_this_machine})
    if not names:
        return False
    return subprocess.run([str(LOCAL_SERVERS), *names]).returncode == 0
