"""The exporters `orderflow run` starts (deployments/exporters.py), with the real binaries
(Debian's, installed by deployments/system-packages.sh): the gateway's stub_status answers on
127.0.0.1 only, never on the public port, and the nginx exporter started as the stack starts
it reads it (nginx_up 1) and is stopped with it. The servers' URLs reach the exporters in
their environment, never on their command line; a PostgreSQL on this machine is asked
without TLS (the exporter's driver asks for it otherwise)."""

import httpx
import pytest

from deployments.exporters import exporters, libpq_url, start_exporters, stop_exporters
from deployments.stack import StackSettings, free_port
from tests.deploy.support import container_gateway, tool
from tests.support import wait_for

DATABASE_URL = "postgresql://orderflow:pg-secret@127.0.0.1:5432/orders_db"
REDIS_URL = "redis://:redis-secret@127.0.0.1:6379/0"


@pytest.fixture
def stack(tmp_path) -> StackSettings:
    return StackSettings(run_dir=tmp_path / "run", gateway_host="127.0.0.1", gateway_port=free_port(),
                         gateway_tls_port=None, serve_host="127.0.0.1", serve_port=free_port(),
                         nginx_exporter_port=free_port())


def test_stub_status_is_on_loopback_only_and_the_nginx_exporter_reads_it(stack):
    tool("prometheus-nginx-exporter", "deployments/system-packages.sh run installs it")
    assert stack.gateway_status_port == stack.gateway_port + 1  # unless set
    with container_gateway(stack):
        assert f"listen 127.0.0.1:{stack.gateway_status_port};" in (stack.run_dir / "nginx.conf").read_text()
        status = httpx.get(stack.gateway_status_url)
        assert status.status_code == 200 and status.text.startswith("Active connections:")
        assert httpx.get(f"{stack.gateway_url}/stub_status").status_code == 404  # not on the public port
        nginx = [e for e in exporters(stack, database_url=DATABASE_URL, redis_url=REDIS_URL)
                 if e.binary == "prometheus-nginx-exporter"]
        processes = start_exporters(stack, nginx, pytest.fail, amqp_url="amqp://guest:guest@rabbitmq.example:5672/")
        try:
            metrics = wait_for(lambda: _scrape(f"http://127.0.0.1:{stack.nginx_exporter_port}/metrics"),
                               "the nginx exporter answering", 20)
            assert "\nnginx_up 1\n" in metrics
        finally:
            stop_exporters(processes)
        # Stopped (its exit code on SIGTERM is 0 or 1, as its HTTP server's close races the signal).
        assert all(process.poll() is not None for process in processes)


def _scrape(url: str) -> str | None:
    try:
        return httpx.get(url, timeout=2).text
    except httpx.TransportError:
        return None


def test_server_urls_go_in_the_environment_only(stack):
    for exporter in exporters(stack, database_url=DATABASE_URL, redis_url=REDIS_URL):
        assert not any("secret" in arg for arg in exporter.args), exporter.binary
        assert any(f"127.0.0.1:{exporter.port}" in arg for arg in exporter.args), exporter.binary
    postgres, redis, _ = exporters(stack, database_url=DATABASE_URL, redis_url=REDIS_URL)
    assert postgres.env == {"DATA_SOURCE_NAME": f"{DATABASE_URL}?sslmode=disable"}
    assert redis.env == {"REDIS_ADDR": REDIS_URL}


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://postgres@localhost/orders_db", "postgresql://postgres@localhost/orders_db?sslmode=disable"),
    ("postgresql://postgres@127.0.0.1/db?sslmode=require", "postgresql://postgres@127.0.0.1/db?sslmode=require"),
    ("postgresql://postgres@db.internal:5432/orders_db", "postgresql://postgres@db.internal:5432/orders_db"),
])
def test_only_a_local_postgresql_is_asked_without_tls(url, expected):
    assert libpq_url(url) == expected
