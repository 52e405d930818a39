"""compose.yaml as `docker-compose config` (Debian's docker-compose) resolves it with
.env.example as the .env, and what the Compose stack promises: healthchecks on every
long-running service, start order by conditions, named volumes, a scalable Ray worker,
every setting in .env.example."""

import shutil
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values

from actors.auth.keys import generate_key_file
from deployments.stack import ROOT
from tests.deploy.support import assert_services_accept, dotenv_keys, run, service_settings, tool

ONE_SHOT = {"keys", "migrate"}
# Built FROM scratch, with nothing to run a check with: Prometheus watches it (its target's up).
WATCHED_BY_PROMETHEUS = {"nginx-exporter"}
EXPORTERS = {"postgres-exporter": "postgres-exporter:9187", "redis-exporter": "redis-exporter:9121",
             "nginx-exporter": "gateway:9113"}


def compose_config(project, *, env_example: bool = True):
    """`docker-compose config` of compose.yaml in a project directory like a checkout's,
    with .env.example copied to .env (or no .env at all)."""
    docker_compose = tool("docker-compose", "deployments/system-packages.sh test installs it (Debian docker-compose)")
    shutil.copy(ROOT / "compose.yaml", project / "compose.yaml")
    for name in ("Dockerfile", "deployments", "monitoring"):
        (project / name).symlink_to(ROOT / name)
    if env_example:
        shutil.copy(ROOT / ".env.example", project / ".env")
    return run([docker_compose, "--project-directory", str(project), "-f", str(project / "compose.yaml"), "config"])


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    result = compose_config(tmp_path_factory.mktemp("compose"))
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_docker_compose_config_passes(config):
    assert set(config["services"]) == {"postgres", "redis", "rabbitmq", "keys", "migrate", "ray-head",
                                       "ray-worker", "gateway", "prometheus", "grafana", "loki", "promtail",
                                       *EXPORTERS}


def test_without_an_env_file_compose_refuses_to_start(tmp_path):
    result = compose_config(tmp_path, env_example=False)
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env (cp .env.example .env)" in result.stderr


def test_every_long_running_service_has_a_healthcheck(config):
    for name, service in config["services"].items():
        check = service.get("healthcheck", {})
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
        elif name in WATCHED_BY_PROMETHEUS:
            assert check.get("test") == ["NONE"] and service["restart"] == "unless-stopped", name
        else:
            assert check.get("test") and check["test"] != ["NONE"] and not check.get("disable"), name


def test_services_start_in_order_on_conditions(config):
    services = config["services"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["ray-head"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "keys": {"condition": "service_completed_successfully"},
        "redis": {"condition": "service_healthy"},
        "rabbitmq": {"condition": "service_healthy"},
    }
    for name in ("ray-worker", "gateway", "prometheus"):
        assert services[name]["depends_on"] == {"ray-head": {"condition": "service_healthy"}}, name
    assert services["grafana"]["depends_on"] == {"prometheus": {"condition": "service_healthy"}}


def test_state_lives_in_named_volumes_and_mounted_files_exist(config):
    named = set(config["volumes"])
    assert {"postgres-data", "redis-data", "rabbitmq-data", "reports", "auth-keys", "prometheus-data",
            "grafana-data"} <= named
    for name, service in config["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            # a bind mount of a file of the checkout, or promtail's view of the Docker engine's containers
            assert source in named or Path(source).exists() or (name, source) == ("promtail", "/var/run/docker.sock"), \
                (name, volume)


def test_the_ray_worker_scales_and_every_ray_node_shares_the_reports(config):
    worker = config["services"]["ray-worker"]
    assert "container_name" not in worker and "ports" not in worker  # `--scale ray-worker=N`
    assert worker["command"][:3] == ["ray", "start", "--address=ray-head:6379"]
    for name in ("ray-head", "ray-worker"):
        assert any(v.startswith("reports:/reports") for v in config["services"][name]["volumes"]), name


def test_the_gateway_is_the_only_public_port(config):
    published = {name: service["ports"] for name, service in config["services"].items() if "ports" in service}
    public = {name for name, ports in published.items() if any(not str(p).startswith("127.0.0.1:") for p in ports)}
    assert public == {"gateway"}


def test_env_example_names_every_setting():
    example = ROOT / ".env.example"
    listed = dotenv_keys(example, commented=True)
    assert service_settings() - listed == set()
    compose_own = {"ORDERFLOW_IMAGE", "ORDERFLOW_PUBLISHED_PORT", "POSTGRES_PASSWORD", "REDIS_PASSWORD",
                   "RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN",
                   "OTEL_EXPORTER_OTLP_ENDPOINT"}  # the last read by OpenTelemetry's exporter itself
    assert listed - service_settings() == compose_own  # no stale or misspelt name
    assert "CHANGE-ME" in example.read_text()


def test_prometheus_scrapes_every_ray_node_and_loads_the_alert_rules(config):
    """The services' metrics come from every Ray node's metrics agent (Ray's pipeline), never
    from Serve's port or the gateway; the alert rules are mounted where the config reads them."""
    prometheus = yaml.safe_load((ROOT / "monitoring" / "compose" / "prometheus.yml").read_text())
    (ray,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == "ray"]
    (discovery,) = ray["dns_sd_configs"]
    ray_nodes = {name for name in config["services"] if name.startswith("ray-")}
    assert set(discovery["names"]) == ray_nodes
    for name in ray_nodes:
        assert f"--metrics-export-port={discovery['port']}" in config["services"][name]["command"]
    assert not any("metrics_path" in job for job in prometheus["scrape_configs"])
    (rabbitmq,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == "rabbitmq"]
    assert rabbitmq["static_configs"] == [{"targets": ["rabbitmq:15692"]}]
    assert config["services"]["rabbitmq"]["image"].startswith("rabbitmq:")  # the official image
    jobs = {job["job_name"]: job.get("static_configs") for job in prometheus["scrape_configs"]}
    for name, target in EXPORTERS.items():  # each exporter scraped where it answers
        assert jobs[name] == [{"targets": [target]}], name
    nginx_exporter = config["services"]["nginx-exporter"]
    assert nginx_exporter["network_mode"] == "service:gateway"  # stub_status is on the gateway's loopback
    status_port = config["services"]["gateway"]["environment"]["ORDERFLOW_GATEWAY_STATUS_PORT"]
    assert nginx_exporter["command"] == [f"--nginx.scrape-uri=http://127.0.0.1:{status_port}/stub_status"]
    # Debian's docker-compose writes volumes as "source:target[:mode]"
    mounts = {target: source for source, target, *_ in
              (volume.split(":") for volume in config["services"]["prometheus"]["volumes"])}
    assert mounts["/etc/prometheus/prometheus.yml"].endswith("/monitoring/compose/prometheus.yml")
    assert mounts["/etc/prometheus/rules"].endswith("/monitoring/rules")
    assert prometheus["rule_files"] == ["/etc/prometheus/rules/*.yml"]


def test_the_services_accept_env_example(monkeypatch, tmp_path):
    """.env.example's values pass the services' settings validation (with a key where the
    `keys` service would have made one)."""
    environment = dotenv_values(ROOT / ".env.example")
    key = tmp_path / "auth-ed25519.pem"
    generate_key_file(key)
    environment["AUTH_SIGNING_KEY_FILE"] = str(key)
    assert_services_accept(monkeypatch, environment)
