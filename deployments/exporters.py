"""The Prometheus exporters `orderflow run` starts next to the stack, each on 127.0.0.1 on a
port of its own (monitoring/prometheus.yml scrapes them): Debian's prometheus-postgres-exporter,
prometheus-redis-exporter and prometheus-nginx-exporter (the gateway's stub_status). RabbitMQ
exports its own metrics (the rabbitmq_prometheus plugin, enabled by deployments/local-servers.sh)
on 15692. The servers' URLs reach the exporters in their environment, never on their command
line (which every user of the machine can read). An exporter that is not installed, or whose
port is taken, is said and left out: the stack runs without it (its Prometheus target is down)."""

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from deployments.stack import StackSettings, _port_taken

RABBITMQ_METRICS_PORT = 15692
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Exporter:
    binary: str  # the Debian package's, on PATH
    port: int
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)


def libpq_url(database_url: str) -> str:
    """The exporter's libpq-style driver asks for TLS unless told otherwise (asyncpg tries it
    and falls back): a server on this machine is asked without."""
    parts = urlsplit(database_url)
    query = dict(parse_qsl(parts.query))
    if "sslmode" not in query and parts.hostname in LOOPBACK:
        query["sslmode"] = "disable"
    return urlunsplit(parts._replace(query=urlencode(query)))


def exporters(stack: StackSettings, *, database_url: str, redis_url: str) -> list[Exporter]:
    return [
        Exporter("prometheus-postgres-exporter", stack.postgres_exporter_port,
                 [f"--web.listen-address=127.0.0.1:{stack.postgres_exporter_port}"],
                 {"DATA_SOURCE_NAME": libpq_url(database_url)}),
        Exporter("prometheus-redis-exporter", stack.redis_exporter_port,
                 ["-web.listen-address", f"127.0.0.1:{stack.redis_exporter_port}"], {"REDIS_ADDR": redis_url}),
        Exporter("prometheus-nginx-exporter", stack.nginx_exporter_port,
                 ["-web.listen-address", f"127.0.0.1:{stack.nginx_exporter_port}",
                  "-nginx.scrape-uri", stack.gateway_status_url]),
    ]


def start_exporters(stack: StackSettings, wanted: list[Exporter], say: Callable[[str], None], *,
                    amqp_url: str) -> list[subprocess.Popen]:
    """Each exporter of `wanted` that can start, its output in <run dir>/<binary>.log (stop
    them with stop_exporters); says what is missing, RabbitMQ's own metrics too when the
    broker is this machine's."""
    started = []
    for exporter in wanted:
        binary = shutil.which(exporter.binary)
        if binary is None:
            say(f"{exporter.binary} is not installed (deployments/system-packages.sh run installs it); "
                "its metrics are missing.")
            continue
        if _port_taken("127.0.0.1", exporter.port):
            say(f"port {exporter.port} ({exporter.binary}) is taken; its metrics are missing.")
            continue
        with (stack.run_dir / f"{exporter.binary}.log").open("w") as log:
            # A session of its own: Ctrl-C reaches `orderflow run`, which stops it.
            started.append(subprocess.Popen([binary, *exporter.args], env=os.environ | exporter.env,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    if urlsplit(amqp_url).hostname in LOOPBACK and not _port_taken("127.0.0.1", RABBITMQ_METRICS_PORT):
        say(f"RabbitMQ's metrics do not answer on 127.0.0.1:{RABBITMQ_METRICS_PORT}: "
            "`sudo deployments/local-servers.sh rabbitmq` enables its rabbitmq_prometheus plugin.")
    return started


def stop_exporters(processes: list[subprocess.Popen], timeout_s: float = 10) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
