"""A real Prometheus (Debian's) scraping an e2e stack: monitoring/prometheus.yml's jobs, each
aimed at the stack's own ports (Ray's service-discovery file, HAProxy's exporter, the exporters
`orderflow run` starts; RabbitMQ's plugin is the shared broker's, 127.0.0.1:15692 as in the
file), and monitoring/rules/. Used by tests/e2e/test_monitoring.py and
bench/dashboard_screenshot.py; `running` (any config) by tests/deploy/test_grafana.py too."""

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from deployments.stack import free_port
from monitoring.alerts import RULES_DIR
from tests.support import wait_for

CONFIG = RULES_DIR.parent / "prometheus.yml"
JOBS = {"ray", "serve-ingress", "postgres-exporter", "redis-exporter", "nginx-exporter", "rabbitmq", "prometheus"}
# The exporters `orderflow run` started, on the ports the stack gave them.
EXPORTER_PORTS = {"postgres-exporter": "ORDERFLOW_POSTGRES_EXPORTER_PORT",
                  "redis-exporter": "ORDERFLOW_REDIS_EXPORTER_PORT",
                  "nginx-exporter": "ORDERFLOW_NGINX_EXPORTER_PORT"}


def stack_config(stack, port: int, interval_s: int) -> dict:
    """monitoring/prometheus.yml with every job aimed at `stack`, Prometheus itself on `port`,
    scraping, evaluating the rules and reading Ray's targets every `interval_s` seconds."""
    config = yaml.safe_load(CONFIG.read_text())
    config["global"] = {"scrape_interval": f"{interval_s}s", "evaluation_interval": f"{interval_s}s"}
    config["rule_files"] = [str(RULES_DIR / "*.yml")]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == JOBS, f"monitoring/prometheus.yml's jobs {sorted(jobs)} are not {sorted(JOBS)}"
    for job, variable in EXPORTER_PORTS.items():
        jobs[job]["static_configs"] = [{"targets": [f"127.0.0.1:{stack.env[variable]}"]}]
    jobs["ray"]["file_sd_configs"] = [{"files": [str(stack.settings.prometheus_targets_file)],
                                       "refresh_interval": f"{interval_s}s"}]
    jobs["serve-ingress"]["static_configs"] = [
        {"targets": [f"127.0.0.1:{stack.env['RAY_SERVE_HAPROXY_METRICS_PORT']}"]}]
    jobs["prometheus"]["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    return config


@contextlib.contextmanager
def scraping(stack, directory: Path, interval_s: int) -> Iterator[str]:
    """Prometheus scraping `stack` (its config, data and log in `directory`), ready; yields its
    URL and stops it at the end."""
    port = free_port()
    with running(stack_config(stack, port, interval_s), port, directory) as url:
        yield url


@contextlib.contextmanager
def running(config: dict, port: int, directory: Path, data: Path | None = None) -> Iterator[str]:
    """Debian's Prometheus with `config` on 127.0.0.1:`port`, its config file and log in
    `directory`, its TSDB in `data` (default `directory`/data); ready, yields its URL and
    stops it at the end."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed; deployments/system-packages.sh test installs it (Debian prometheus)")
    config_file = directory / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    log = (directory / "prometheus.log").open("w")
    process = subprocess.Popen(
        [binary, f"--config.file={config_file}", f"--storage.tsdb.path={data or directory / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert process.poll() is None, f"prometheus exited: {(directory / 'prometheus.log').read_text()[-2000:]}"
            return _answers(f"{url}/-/ready")

        wait_for(ready, "Prometheus ready", 60)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False
