"""The operations commands against the running stack: `orderflow status`, `logs`, `users`
and `report`, run as an operator runs them (the stack's settings in the environment)."""

import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import mail_match, place_order
from tests.factories import PASSWORD, unique_email
from tests.support import wait_for

pytestmark = pytest.mark.e2e


def orderflow(stack, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("orderflow")), *args]
    return subprocess.run(command, env=stack.env, input=stdin, capture_output=True, text=True, timeout=120)


def test_the_console_shows_each_service_starting_then_stays_quiet(stack, client):
    place_order(client, "console@example.com")
    console = stack.log_path.read_text()
    for number, service in enumerate(("orders", "auth", "notifications", "analytics"), 1):
        assert f"orderflow: {service} ready ({number}/4)" in console
    assert '"service": "orders"' not in console, "replica lines go to their files, not the console"


def test_status_shows_every_application_service_and_server(stack, client):
    place_order(client, "status@example.com")
    done = orderflow(stack, "status")
    # All well but for dead letters other tests of the session may have left: exit 1 then.
    assert done.returncode == (0 if "dead-letter queue 0" in done.stdout else 1), done.stdout + done.stderr
    for app in ("orders", "auth", "notification", "analytics"):
        assert any(line.split()[:2] == [app, "RUNNING"] for line in done.stdout.splitlines()), done.stdout
    for service in ("orders", "auth", "notifications", "analytics"):
        assert f"  {service:<13} ready" in done.stdout, done.stdout
    for server in ("PostgreSQL", "Redis", "RabbitMQ"):
        assert any(line.split()[0] == server and line.endswith("answers") for line in done.stdout.splitlines()
                   if line.strip()), done.stdout
    wait_for(lambda: "outbox backlog 0" in orderflow(stack, "status").stdout, "the outbox to be published")
    assert re.search(r"^  dead-letter queue \d+$", done.stdout, re.M), done.stdout


def test_logs_shows_a_services_lines_readably(stack, client):
    order = place_order(client, "logs@example.com")
    lines = wait_for(lambda: [line for line in orderflow(stack, "logs", "orders", "--no-follow").stdout.splitlines()
                              if order["id"] in line], "the order's line in `orderflow logs orders`")
    assert any(" orders[" in line and "order created" in line and not line.startswith("{") for line in lines), lines
    gateway = orderflow(stack, "logs", "gateway", "--no-follow").stdout
    assert "gateway POST /orders -> 201" in gateway


def test_users_creates_staff_sets_roles_and_mails_a_reset_link(stack):
    address = unique_email("staff")
    created = orderflow(stack, "users", "create", address, "--name", "New Packer", stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stdout + created.stderr
    login = httpx.post(f"{stack.url}/auth/login", json={"email": address, "password": PASSWORD})
    assert login.status_code == 200, login.text
    me = httpx.get(f"{stack.url}/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert set(me.json()["roles"]) == {"customer", "warehouse"}

    assert orderflow(stack, "users", "roles", address, "admin").returncode == 0
    assert f"{address}" in (listed := orderflow(stack, "users", "list").stdout) and "admin" in next(
        line for line in listed.splitlines() if address in line)

    assert orderflow(stack, "users", "reset-password", address).returncode == 0
    token = wait_for(lambda: mail_match(stack, address, r"/reset-password\?token=([\w-]+)"),
                     "the reset link in the mail sink", timeout_s=30).group(1)
    reset = httpx.post(f"{stack.url}/auth/password-reset/confirm",
                       json={"token": token, "password": "another-" + uuid.uuid4().hex})
    assert reset.status_code == 204, reset.text
    assert orderflow(stack, "users", "roles", unique_email("nobody"), "admin").returncode == 1


def test_report_makes_a_report_now(stack, client):
    before = {r["name"] for r in client.get("/analytics/reports").json()}
    done = orderflow(stack, "report", "day")
    assert done.returncode == 0, done.stdout + done.stderr
    made = {r["name"] for r in client.get("/analytics/reports").json()} - before
    assert len(made) == 1 and next(iter(made)) in done.stdout
