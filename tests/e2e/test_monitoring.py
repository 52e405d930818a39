"""A real Prometheus (Debian's) scrapes the running stack with monitoring/prometheus.yml's jobs
and monitoring/rules/ (scrape and evaluation every 2 s; the rules' own `for:` durations):
every target is up, the exporters among them (PostgreSQL's, Redis's and the gateway's, which
`orderflow run` starts, and RabbitMQ's own plugin) each reaching its server; every metric the
rules and the Orderflow dashboard read is in the scrape. Stopping RabbitMQ (the shared server,
started again in `finally`) makes OrderflowRabbitMQUnreachable fire while orders are still
taken, and resolve after, with every order's event delivered from the outbox; deleting the
analytics application through Serve's REST API makes OrderflowServiceDown fire for analytics,
and resolve once the application is deployed again. How long each alert took is written to
test-output/monitoring-alerts.json."""

import asyncio
import json
import re
import socket
import time

import httpx
import pytest
from websockets.sync.client import connect

from deployments.stack import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD
from monitoring.alerts import alert_rules, metric_names
from monitoring.grafana.queries import dashboards, missing_metrics
from tests.e2e.conftest import OUTPUT
from tests.e2e.prometheus import JOBS, scraping
from tests.e2e.support import login, notifications_refused, place_order, publish_broken_event
from tests.factories import PASSWORD, order_body, unique_email
from tests.servers import rabbitmq_stopped
from tests.support import wait_for

TIMES = OUTPUT / "monitoring-alerts.json"


@pytest.fixture(scope="module")
def prometheus(stack, tmp_path_factory):
    """Prometheus with the local config's jobs pointed at this stack (scrape and evaluation
    every 2 s), until the module ends."""
    with scraping(stack, tmp_path_factory.mktemp("prometheus"), interval_s=2) as url:
        yield url


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
        return jobs == JOBS and all(t["health"] == "up" for t in targets) and targets
    try:
        targets = wait_for(all_up, "every target up", 180)
    except AssertionError:
        pytest.fail(f"targets (job, url, health, last error): {seen}")
    assert sum(target["labels"]["job"] == "ray" for target in targets) >= 1


def query(prometheus: str, promql: str) -> list[dict]:
    return api(prometheus, "query", query=promql)["result"]


def test_every_exporter_reaches_its_server(prometheus):
    """Each exporter's target is up (above) and says its server answers: pg_up, redis_up and
    nginx_up are 1, and RabbitMQ's plugin reports the broker's own identity."""
    wanted = {"pg_up": "postgres-exporter", "redis_up": "redis-exporter", "nginx_up": "nginx-exporter",
              "rabbitmq_identity_info": "rabbitmq"}
    seen = {}

    def all_answer() -> bool:
        for name, job in wanted.items():
            seen[name] = [(s["metric"]["job"], s["value"][1]) for s in query(prometheus, name)]
        return all(seen[name] == [(job, "1")] for name, job in wanted.items())

    try:
        wait_for(all_answer, "every exporter reaching its server", 60)
    except AssertionError:
        pytest.fail(f"(job, value) of each: {seen}")


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


def record_time(name: str, seconds: float) -> None:
    """How long an alert took, kept in test-output/monitoring-alerts.json (not asserted)."""
    times = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    TIMES.write_text(json.dumps(times | {name: round(seconds, 1)}, indent=2) + "\n")


def notified_numbers(client) -> set[str]:
    return {n["order_number"] for n in client.get("/notifications", params={"limit": 500}).json()["items"]}


def accepts_amqp() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=2).close()
        return True
    except OSError:
        return False


def test_stopping_rabbitmq_fires_its_alert_and_loses_no_order_event(prometheus, stack, anonymous, client):
    """RabbitMQ stopped while the stack runs: orders are still answered 201 (their events wait
    in the outbox), OrderflowRabbitMQUnreachable fires for the relay (orders), the consumer
    (notification) and Prometheus' scrape of the broker, and the relay's publish failures are
    in the scrape. RabbitMQ started again (always): the alert resolves, the outbox drains and
    every order placed meanwhile reaches the notifications log."""
    expected = {"orders", "notification", "prometheus"}
    wait_for(lambda: not firing(prometheus, "OrderflowRabbitMQUnreachable"), "no RabbitMQ alert before", 120)
    seen = []

    def all_firing() -> list[dict]:
        seen[:] = firing(prometheus, "OrderflowRabbitMQUnreachable")
        return seen if {alert["labels"]["service"] for alert in seen} >= expected else []

    stopped = time.monotonic()
    with rabbitmq_stopped():
        assert not accepts_amqp()
        placed = [place_order(anonymous, unique_email("outage")) for _ in range(3)]  # each a 201
        try:
            alerts = wait_for(all_firing, "OrderflowRabbitMQUnreachable firing", 240)
        except AssertionError:
            pytest.fail(f"firing: {[alert['labels'] for alert in seen]}")
        record_time("OrderflowRabbitMQUnreachable fired after (s)", time.monotonic() - stopped)
        assert {alert["labels"]["severity"] for alert in alerts} == {"critical"}
        assert alerts[0]["annotations"]["runbook_url"] == "docs/runbooks.md#orderflowrabbitmqunreachable"
        wait_for(lambda: query(prometheus, "ray_orderflow_outbox_publish_failures_total"),
                 "the relay's publish failures in the scrape", 60)
        wait_for(lambda: query(prometheus, f"max(ray_orderflow_outbox_backlog) >= {len(placed)}"),
                 "the orders' events waiting in the outbox", 60)
        assert not notified_numbers(client) & {order["number"] for order in placed}
    started = time.monotonic()
    wait_for(accepts_amqp, "RabbitMQ accepting connections again", 60)
    wait_for(lambda: not firing(prometheus, "OrderflowRabbitMQUnreachable"), "OrderflowRabbitMQUnreachable resolved",
             240)
    record_time("OrderflowRabbitMQUnreachable resolved after RabbitMQ started (s)", time.monotonic() - started)
    numbers = {order["number"] for order in placed}
    wait_for(lambda: numbers <= notified_numbers(client), "every order's notification after the outage", 120)
    wait_for(lambda: query(prometheus, "max(ray_orderflow_outbox_backlog) == 0"), "the outbox drained", 60)


async def test_every_metric_the_dashboard_reads_is_in_the_scrape(prometheus, stack, anonymous, client, admin_token):
    """Every query of the Orderflow dashboard reads metrics the scrape has, with nothing left
    out: after the traffic of the tests above (RabbitMQ's outage made the publish failures),
    an order paid, a message the consumer dead-letters, an order whose notification the
    database refuses at first (the event is retried, then stored once the refusal ends),
    and with an agent connected to the notifications WebSocket."""
    await publish_broken_event(stack)
    order = anonymous.post("/orders", json=order_body()).json()
    paid = client.post(f"/orders/{order['id']}/status", json={"status": "paid"}, headers={"If-Match": '"1"'})
    assert paid.status_code == 200, paid.text

    def retried() -> float:
        return sum(float(s["value"][1]) for s in query(prometheus, "ray_orderflow_events_retried_total"))

    before = retried()
    email = unique_email("retried")
    async with notifications_refused(stack, email):
        refused = place_order(anonymous, email)
        await asyncio.to_thread(wait_for, lambda: retried() > before, "the refused event retried, in the scrape", 60)
    await asyncio.to_thread(wait_for, lambda: refused["number"] in notified_numbers(client),
                            "the refused order's notification, stored on a later try", 90)
    last = {}

    def none_missing() -> bool:
        nonlocal last
        missing = missing_metrics(dashboards(), api(prometheus, "label/__name__/values"))
        last = {panel: names for panel, names in missing.items() if names}
        return not last

    agent_url = stack.url.replace("http://", "ws://") + f"/notifications/ws?token={admin_token}"
    with connect(agent_url, open_timeout=10) as agent:
        assert json.loads(agent.recv(timeout=10))  # accepted: a heartbeat or a notification
        try:
            await asyncio.to_thread(wait_for, none_missing, "every metric of the dashboard in Prometheus", 120)
        except AssertionError:
            pytest.fail(f"panels whose metrics are not in the scrape: {last}")


def test_deleting_an_application_fires_service_down_and_redeploying_resolves_it(prometheus, stack, anonymous):
    url, headers = serve_api(stack)
    details = httpx.get(f"{url}/api/serve/applications/", headers=headers, timeout=30).json()
    assert set(details["applications"]) == {"orders", "auth", "notification", "analytics"}
    full = deployed_config(details)
    wait_for(lambda: not firing(prometheus, "OrderflowServiceDown"), "no service down before", 60)
    answer = httpx.put(f"{url}/api/serve/applications/", json=deployed_config(details, without="analytics"),
                       headers=headers, timeout=120)
    assert answer.status_code == 200, answer.text
    deleted = time.monotonic()
    try:
        alerts = wait_for(lambda: firing(prometheus, "OrderflowServiceDown"), "OrderflowServiceDown firing", 180)
        record_time("OrderflowServiceDown fired after (s)", time.monotonic() - deleted)
        assert [alert["labels"]["service"] for alert in alerts] == ["analytics"]
        assert alerts[0]["labels"]["severity"] == "critical"
        assert alerts[0]["annotations"]["runbook_url"] == "docs/runbooks.md#orderflowservicedown"
    finally:
        answer = httpx.put(f"{url}/api/serve/applications/", json=full, headers=headers, timeout=120)
        assert answer.status_code == 200, answer.text
        redeployed = time.monotonic()
        wait_for(lambda: anonymous.get("/analytics/ready").status_code == 200, "analytics ready again", 180)
    wait_for(lambda: not firing(prometheus, "OrderflowServiceDown"), "OrderflowServiceDown resolved", 120)
    record_time("OrderflowServiceDown resolved after redeploying (s)", time.monotonic() - redeployed)
