"""A real Prometheus (Debian's) scrapes the running stack with monitoring/prometheus.yml's jobs
and monitoring/rules/ (scrape and evaluation every 2 s): every target is up, every metric the
rules and the Orderflow dashboard read is in the scrape, and deleting the analytics application through Serve's REST API
makes OrderflowServiceDown fire for analytics in Prometheus' /api/v1/alerts, and resolve once
the application is deployed again."""

import asyncio
import json
import re
import shutil
import subprocess
import time

import httpx
import pytest
import yaml
from websockets.sync.client import connect

from deployments.stack import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD, free_port
from monitoring.alerts import RULES_DIR, alert_rules, metric_names
from monitoring.grafana.queries import dashboards, missing_metrics
from tests.e2e.support import login, publish_broken_event
from tests.factories import PASSWORD, order_body, unique_email
from tests.support import wait_for

ROOT_CONFIG = RULES_DIR.parent / "prometheus.yml"


@pytest.fixture(scope="module")
def prometheus(stack, tmp_path_factory):
    """Prometheus with the local config's jobs pointed at this stack, until the module ends."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed; deployments/system-packages.sh test installs it (Debian prometheus)")
    directory = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = yaml.safe_load(ROOT_CONFIG.read_text())
    config["global"] = {"scrape_interval": "2s", "evaluation_interval": "2s"}
    config["rule_files"] = [str(RULES_DIR / "*.yml")]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"ray", "serve-ingress", "prometheus"}
    jobs["ray"]["file_sd_configs"] = [{"files": [str(stack.settings.prometheus_targets_file)],
                                       "refresh_interval": "2s"}]
    jobs["serve-ingress"]["static_configs"] = [
        {"targets": [f"127.0.0.1:{stack.env['RAY_SERVE_HAPROXY_METRICS_PORT']}"]}]
    jobs["prometheus"]["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (directory / "prometheus.log").open("w")
    process = subprocess.Popen(
        [binary, f"--config.file={directory / 'prometheus.yml'}", f"--storage.tsdb.path={directory / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(f"{url}/-/ready"), "Prometheus ready", 60)
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


def api(prometheus: str, path: str, **params) -> dict | list:
    answer = httpx.get(f"{prometheus}/api/v1/{path}", params=params, timeout=10)
    answer.raise_for_status()
    return answer.json()["data"]


def test_every_target_is_up(prometheus):
    seen = []

    def all_up():
        targets = api(prometheus, "targets")["activeTargets"]
        seen[:] = [(t["labels"]["job"], t["scrapeUrl"], t["health"], t.get("lastError", "")) for t in targets]
        jobs = {target["labels"]["job"] for target in targets}
        return jobs == {"ray", "serve-ingress", "prometheus"} and all(t["health"] == "up" for t in targets) \
            and targets
    try:
        targets = wait_for(all_up, "every target up", 180)
    except AssertionError:
        pytest.fail(f"targets (job, url, health, last error): {seen}")
    assert sum(target["labels"]["job"] == "ray" for target in targets) >= 1


def test_every_metric_the_rules_read_is_in_the_scrape(prometheus, stack, anonymous):
    # The counters appear with their first event: an order, a failed login, a lockout, a
    # refresh token used twice.
    anonymous.post("/orders", json=order_body())
    email = unique_email("metrics")
    anonymous.post("/auth/register", json={"email": email, "password": PASSWORD, "name": "Metrics Test"})
    for _ in range(6):  # AUTH_LOCKOUT_ATTEMPTS is 5
        anonymous.post("/auth/login", json={"email": email, "password": "not-the-password"})
    first = login(stack.url, email=DEV_ADMIN_EMAIL, password=DEV_ADMIN_PASSWORD)
    second = anonymous.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    anonymous.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert anonymous.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).status_code == 401

    wanted = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))

    def missing() -> set[str]:
        return {name for name in wanted if not api(prometheus, "series", **{"match[]": name})}

    last = set()

    def none_missing() -> bool:
        nonlocal last
        last = missing()
        return not last

    try:
        wait_for(none_missing, "every metric of the rules in Prometheus", 120)
    except AssertionError:
        pytest.fail(f"not in the scrape: {sorted(last)}")


async def test_every_metric_the_dashboard_reads_is_in_the_scrape(prometheus, stack, anonymous, client, admin_token):
    """Every query of the Orderflow dashboard reads metrics the scrape has, after the traffic
    of the test above, an order paid, a message the consumer dead-letters, and with an agent
    connected to the notifications WebSocket. Ray exports a counter
    from its first increment only: the two counters of failures this test does not cause (a
    publish to RabbitMQ failing, an event retried) are left out, by name."""
    not_caused = {"ray_orderflow_outbox_publish_failures_total", "ray_orderflow_events_retried_total"}
    await publish_broken_event(stack)
    order = anonymous.post("/orders", json=order_body()).json()
    paid = client.post(f"/orders/{order['id']}/status", json={"status": "paid"}, headers={"If-Match": '"1"'})
    assert paid.status_code == 200, paid.text
    last = {}

    def none_missing() -> bool:
        nonlocal last
        missing = missing_metrics(dashboards(), api(prometheus, "label/__name__/values"))
        last = {panel: names - not_caused for panel, names in missing.items() if names - not_caused}
        return not last

    agent_url = stack.url.replace("http://", "ws://") + f"/notifications/ws?token={admin_token}"
    with connect(agent_url, open_timeout=10) as agent:
        assert json.loads(agent.recv(timeout=10))  # accepted: a heartbeat or a notification
        try:
            await asyncio.to_thread(wait_for, none_missing, "every metric of the dashboard in Prometheus", 120)
        except AssertionError:
            pytest.fail(f"panels whose metrics are not in the scrape: {last}")


def serve_api(stack) -> tuple[str, dict[str, str]]:
    """The Ray dashboard of the stack (as `orderflow run` printed it) and its token header."""
    url = re.search(r"Ray dashboard\s+(http://\S+)", stack.log_path.read_text()).group(1)
    token = (stack.settings.run_dir / "ray-auth-token").read_text().strip()
    return url, {"Authorization": f"Bearer {token}"}


def deployed_config(details: dict, without: str | None = None) -> dict:
    """Serve's deploy config of what runs now (each application as it was deployed, its
    runtime_env included), less the application `without`."""
    return {
        "proxy_location": details["proxy_location"],
        "http_options": {key: details["http_options"][key] for key in ("host", "port", "request_timeout_s")},
        "applications": [app["deployed_app_config"] for name, app in details["applications"].items()
                         if name != without],
    }


def firing(prometheus: str, alertname: str) -> list[dict]:
    return [alert for alert in api(prometheus, "alerts")["alerts"]
            if alert["labels"]["alertname"] == alertname and alert["state"] == "firing"]


def test_deleting_an_application_fires_service_down_and_redeploying_resolves_it(prometheus, stack, anonymous):
    url, headers = serve_api(stack)
    details = httpx.get(f"{url}/api/serve/applications/", headers=headers, timeout=30).json()
    assert set(details["applications"]) == {"orders", "auth", "notification", "analytics"}
    full = deployed_config(details)
    wait_for(lambda: not firing(prometheus, "OrderflowServiceDown"), "no service down before", 60)
    answer = httpx.put(f"{url}/api/serve/applications/", json=deployed_config(details, without="analytics"),
                       headers=headers, timeout=120)
    assert answer.status_code == 200, answer.text
    try:
        alerts = wait_for(lambda: firing(prometheus, "OrderflowServiceDown"), "OrderflowServiceDown firing", 180)
        assert [alert["labels"]["service"] for alert in alerts] == ["analytics"]
        assert alerts[0]["labels"]["severity"] == "critical"
        assert alerts[0]["annotations"]["runbook_url"] == "docs/runbooks.md#orderflowservicedown"
    finally:
        answer = httpx.put(f"{url}/api/serve/applications/", json=full, headers=headers, timeout=120)
        assert answer.status_code == 200, answer.text
        wait_for(lambda: anonymous.get("/analytics/ready").status_code == 200, "analytics ready again", 180)
    wait_for(lambda: not firing(prometheus, "OrderflowServiceDown"), "OrderflowServiceDown resolved", 120)
