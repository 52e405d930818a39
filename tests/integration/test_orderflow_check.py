"""The newcomer path through the real `orderflow` command in a subprocess: every
prerequisite is checked before anything starts, and each problem is one line naming the
setting and what to do; on the real PostgreSQL, Redis and RabbitMQ."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from deployments.stack import free_port

ORDERFLOW = [str(Path(sys.executable).parent / "orderflow")]  # the installed command
ROOT = Path(__file__).resolve().parents[2]


def orderflow(*args: str, tmp_path: Path, timeout_s: float = 60, **env: str) -> subprocess.CompletedProcess:
    """`orderflow <args>` with every port the stack would bind set to a free one (a
    `make run` on this machine holds the defaults), and `env` on top."""
    ports = {name: str(free_port()) for name in ("ORDERFLOW_GATEWAY_PORT", "ORDERFLOW_GATEWAY_TLS_PORT",
                                                 "ORDERFLOW_GATEWAY_STATUS_PORT", "ORDERFLOW_SERVE_PORT",
                                                 "ORDERFLOW_METRICS_PORT", "ORDERFLOW_MAIL_SINK_PORT",
                                                 "RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT")}
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("ORDERFLOW_", "AUTH_SMTP"))}
    environment |= ports | {"ORDERFLOW_RUN_DIR": str(tmp_path / "run")} | env
    return subprocess.run([*ORDERFLOW, *args], capture_output=True, text=True, env=environment, cwd=ROOT,
                          timeout=timeout_s)


def lines(result: subprocess.CompletedProcess) -> list[str]:
    return (result.stdout + result.stderr).splitlines()


def test_check_passes_when_everything_is_there(tmp_path):
    result = orderflow("check", tmp_path=tmp_path)
    assert result.returncode == 0, lines(result)
    assert lines(result) == ["orderflow: settings valid, nginx installed, ports free; "
                             "PostgreSQL, Redis and RabbitMQ answer."]


@pytest.mark.parametrize(("variable", "value", "what"), [
    ("ORDERFLOW_GATEWAY_PORT", "abc", "valid integer"),
    ("ORDERS_DATABASE_URL", "postgresql://postgres@127.0.0.1:abc/orders_db", "port is not a number"),
    ("AUTH_DATABASE_URL", "127.0.0.1:5432/auth_db", "must start with postgresql://"),
    ("NOTIFY_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432", "names no database"),
    ("REDIS_URL", "http://127.0.0.1:6379/0", "must start with redis://"),
    ("AMQP_URL", "guest:guest@127.0.0.1:5672", "must start with amqp://"),
    ("NOTIFY_PREFETCH", "0", "greater than or equal to 1"),
    ("RAY_SERVE_HAPROXY_STATS_PORT", "99999", "port number"),
])
def test_a_bad_setting_is_one_line_naming_it(tmp_path, variable, value, what):
    result = orderflow("check", tmp_path=tmp_path, **{variable: value})
    assert result.returncode == 2, lines(result)
    [line] = lines(result)
    assert line.startswith(f"orderflow: {variable}: ") and what in line


def test_run_names_a_bad_setting_before_it_starts_anything(tmp_path):
    result = orderflow("run", tmp_path=tmp_path, ORDERFLOW_GATEWAY_PORT="abc")
    assert result.returncode == 2, lines(result)
    [line] = lines(result)
    assert line.startswith("orderflow: ORDERFLOW_GATEWAY_PORT: ")
    assert not (tmp_path / "run").exists()


def test_run_says_nginx_is_missing_before_it_starts_anything(tmp_path):
    # Before, Ray and the four applications started (minutes) and only then was nginx missed.
    result = orderflow("run", tmp_path=tmp_path, ORDERFLOW_NGINX_BINARY=str(tmp_path / "no-nginx"))
    assert result.returncode == 1, lines(result)
    assert lines(result) == [f"orderflow: ORDERFLOW_NGINX_BINARY: no nginx at '{tmp_path / 'no-nginx'}'."]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("variable", ["ORDERFLOW_GATEWAY_PORT", "ORDERFLOW_GATEWAY_TLS_PORT", "ORDERFLOW_GATEWAY_STATUS_PORT",
                                      "ORDERFLOW_SERVE_PORT", "ORDERFLOW_METRICS_PORT", "ORDERFLOW_MAIL_SINK_PORT",
                                      "RAY_SERVE_HAPROXY_METRICS_PORT"])
def test_a_taken_port_is_named_with_its_setting(tmp_path, variable):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = orderflow("check", tmp_path=tmp_path, **{variable: str(port)})
    assert result.returncode == 1, lines(result)
    assert lines(result) == [f"orderflow: 127.0.0.1:{port} ({variable}) is taken; set {variable} to a free port."]


def test_redis_is_checked_as_the_services_use_it(tmp_path):
    # TLS to the plain-text server: a raw socket PING passed this, the services then failed.
    result = orderflow("check", tmp_path=tmp_path, REDIS_URL="rediss://127.0.0.1:6379/0")
    assert result.returncode == 1, lines(result)
    [line] = lines(result)
    assert line.startswith("orderflow: Redis does not answer at rediss://127.0.0.1:6379/0 (REDIS_URL): ")
    assert "check REDIS_URL" in line


def test_a_server_that_does_not_answer_is_named_with_its_setting(tmp_path):
    port = free_port()
    result = orderflow("check", tmp_path=tmp_path, AMQP_URL=f"amqp://guest:guest@127.0.0.1:{port}/")
    assert result.returncode == 1, lines(result)
    [line] = lines(result)
    assert line.startswith(f"orderflow: RabbitMQ does not answer at amqp://127.0.0.1:{port}/ (AMQP_URL): ")
    assert line.endswith("start it, or point AMQP_URL at a running server.")


def test_check_beside_a_running_stack_says_so_instead_of_taken_ports(tmp_path):
    # A `make run` holds its ports: `make check` beside it says that, not "taken; set ...".
    with socket.socket() as gateway:
        gateway.bind(("127.0.0.1", 0))
        gateway.listen()
        port = gateway.getsockname()[1]
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "orderflow.pid").write_text(str(os.getpid()))  # a live process
        result = orderflow("check", tmp_path=tmp_path, ORDERFLOW_GATEWAY_PORT=str(port))
    assert result.returncode == 0, lines(result)
    assert lines(result) == [f"orderflow: a stack runs (pid {os.getpid()}); its ports are in use.",
                             "orderflow: settings valid, nginx installed; PostgreSQL, Redis and RabbitMQ answer."]


def test_cluster_checks_only_the_ports_a_cluster_listens_on(tmp_path):
    # `orderflow cluster` runs no HAProxy (Serve's default proxy) and its nodes pick their
    # metrics agents' ports: ports taken there do not stop it; a taken gateway port does.
    holders = [socket.socket() for _ in range(4)]
    try:
        for holder in holders:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
        gateway, metrics, stats, haproxy_metrics = (holder.getsockname()[1] for holder in holders)
        result = orderflow("cluster", tmp_path=tmp_path, ORDERFLOW_GATEWAY_PORT=str(gateway),
                           ORDERFLOW_METRICS_PORT=str(metrics), RAY_SERVE_HAPROXY_STATS_PORT=str(stats),
                           RAY_SERVE_HAPROXY_METRICS_PORT=str(haproxy_metrics))
    finally:
        for holder in holders:
            holder.close()
    assert result.returncode == 1, lines(result)
    assert lines(result) == [f"orderflow: 127.0.0.1:{gateway} (ORDERFLOW_GATEWAY_PORT) is taken; "
                             "set ORDERFLOW_GATEWAY_PORT to a free port."]
    assert not (tmp_path / "run").exists()
