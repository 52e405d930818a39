"""Desktop notifications end to end: an order placed through the gateway reaches the
orderflow-agent over the WebSocket, appears in a real notification server (dunst under
Xvfb on a private D-Bus session bus), and a click opens the order in the "browser"."""

import logging
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from agent.desktop import APP_ICON
from tests.e2e.conftest import OUTPUT
from tests.e2e.desktop import AgentProcess, running_desktop
from tests.e2e.support import place_order
from tests.servers import rabbitmq_stopped
from tests.support import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def desktop(tmp_path_factory):
    with running_desktop(tmp_path_factory.mktemp("desktop")) as desktop:
        yield desktop


@pytest.fixture(scope="module")
def agent(stack, desktop, tmp_path_factory):
    agent = AgentProcess(tmp_path_factory.mktemp("agent-home"), desktop, stack.url)
    try:
        wait_for(lambda: any("connected to" in e["message"] for e in agent.log()) or agent.process.poll() is not None,
                 "the agent to connect", timeout_s=60)
        assert agent.process.poll() is None, (agent.home / "agent-stderr.log").read_text()
        yield agent
    finally:
        assert agent.stop() == 0, "the agent stops cleanly on SIGTERM"


def test_a_new_order_becomes_a_desktop_notification_that_opens_the_order(stack, client, desktop, agent):
    desktop.run("dunstctl", "close-all")
    order = place_order(client)

    wait_for(lambda: desktop.displayed() >= 1, "the notification on screen")
    shot = desktop.screenshot(OUTPUT / "desktop-notification.png")
    assert shot.stat().st_size > 0

    assert desktop.run("dunstctl", "action", "0").returncode == 0  # a click on the notification
    expected_url = f"{stack.url}/admin/orders/{order['id']}"
    assert wait_for(agent.opened_urls, "the browser to be asked to open the order") == [expected_url]

    # dunst keeps a notification on screen after its action (a mouse click also closes it);
    # closing it moves it to the history.
    assert desktop.run("dunstctl", "close-all").returncode == 0
    entry = wait_for(lambda: [h for h in desktop.history() if order["number"] in h["summary"]],
                     f"the notification in dunst's history (displayed: {desktop.displayed()}, "
                     f"history: {desktop.history()}, agent: {agent.log()[-5:]})")[0]
    assert (entry["appname"], entry["icon_path"]) == ("Orderflow", str(APP_ICON))
    assert entry["summary"] == f"New order {order['number']}"
    assert entry["body"] == "desk@example.com ordered 3 items, total 129.30 PLN."
    [shown] = [e for e in agent.shown() if e["order_id"] == order["id"]]
    assert shown["url"] == expected_url and shown["kind"] == "order_created"


def test_a_cancellation_is_urgent_and_its_button_opens_the_order(stack, client, desktop, agent):
    order = place_order(client, "cancel@example.com")
    wait_for(lambda: any(e["order_id"] == order["id"] for e in agent.shown()), "the new-order notification")
    desktop.run("dunstctl", "close-all")
    response = client.post(f"/orders/{order['id']}/cancel")
    assert response.status_code == 200, response.text

    cancelled = wait_for(lambda: [e for e in agent.shown() if e["order_id"] == order["id"]
                                  and e["kind"] == "order_cancelled"], "the cancellation notification")
    assert len(cancelled) == 1
    wait_for(lambda: desktop.displayed() >= 1, "the cancellation on screen")
    desktop.screenshot(OUTPUT / "desktop-notification-cancelled.png")
    notifications = client.get("/notifications", params={"after": 0, "limit": 500}).json()["items"]
    [logged] = [n for n in notifications if n["order_id"] == order["id"] and n["kind"] == "order_cancelled"]
    assert logged["urgency"] == "critical"
    assert f"{stack.url}/admin/orders/{order['id']}" not in agent.opened_urls()
    desktop.press("Open order", logged["title"])
    wait_for(lambda: f"{stack.url}/admin/orders/{order['id']}" in agent.opened_urls(), "the order to open")


def test_orders_placed_while_rabbitmq_is_down_each_reach_the_desktop_once(stack, client, desktop, agent):
    """The deployed path end to end: the orders replicas keep accepting orders while the
    broker is stopped (the outbox holds the events), the relay and the notification
    consumer reconnect by themselves, and the agent hands every order to dunst exactly once."""
    desktop.run("dunstctl", "close-all")
    before = dunst_total(desktop)
    placed = []

    def created_shown() -> Counter:
        return Counter(e["order_id"] for e in agent.shown() if e["kind"] == "order_created"
                       and e["order_id"] in placed)

    placed += [place_order(client, f"outage{n}@example.com")["id"] for n in range(50)]
    with rabbitmq_stopped():
        placed += [place_order(client, f"outage{n}@example.com")["id"] for n in range(50, 150)]
        assert len(created_shown()) <= 50, "the outage really held the events back"
    placed += [place_order(client, f"outage{n}@example.com")["id"] for n in range(150, 200)]

    wait_for(lambda: len(created_shown()) == 200, "all 200 orders on the desktop", timeout_s=180)
    wait_for(lambda: dunst_total(desktop) - before >= 200, "dunst to hold all 200", timeout_s=30)
    assert created_shown() == Counter(placed), "each order shown exactly once"
    assert dunst_total(desktop) - before == 200


def dunst_total(desktop) -> int:
    """Notifications dunst has: on screen, waiting for room on screen, and in its history."""
    return sum(int(desktop.run("dunstctl", "count", part).stdout.strip() or 0)
               for part in ("displayed", "waiting", "history"))


async def test_without_a_notification_server_the_agent_says_so_once_until_one_starts(
        tmp_path, monkeypatch, caplog):
    """A real session bus with nobody owning org.freedesktop.Notifications, then dunst."""
    from agent.desktop import Alert, DesktopAlerts

    caplog.set_level(logging.INFO, logger="orderflow")
    with running_desktop(tmp_path / "desktop", notification_server=False) as bare:
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bare.bus_address)
        alerts = DesktopAlerts("Orderflow")
        alert = Alert("New order ORD-2026-000007", "ada@example.com ordered 1 item", "http://shop/admin/orders/7")
        assert [await alerts.show(alert) for _ in range(20)] == [None] * 20
        assert bare.bus_clients() <= 2, "failed attempts must not leave D-Bus connections open"
        bare.start_notification_server()
        assert await alerts.show(alert) is not None
        wait_for(lambda: bare.displayed() >= 1, "the notification on screen once a server runs")

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if w.startswith("No desktop notification server")]) == 1
    assert len([w for w in warnings if "running again" in w]) == 1


def run_agent_command(desktop, home: Path, *args: str) -> subprocess.CompletedProcess:
    agent = Path(sys.executable).with_name("orderflow-agent")
    env = {**os.environ, **desktop.env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_STATE_HOME": str(home / "state"), "ORDERFLOW_AGENT_SERVER": "https://shop.example.com"}
    return subprocess.run([str(agent), *args], env=env, capture_output=True, text=True, timeout=60)


def test_the_test_command_shows_one_notification(desktop, tmp_path):
    desktop.run("dunstctl", "close-all")
    done = run_agent_command(desktop, tmp_path, "--test")
    assert done.returncode == 0, done.stderr
    assert "test notification sent" in done.stderr
    wait_for(lambda: desktop.displayed() >= 1, "the test notification on screen")
    desktop.run("dunstctl", "close-all")
    [entry] = wait_for(lambda: [e for e in desktop.history() if e["summary"] == "Orderflow agent works"],
                       "the test notification in dunst's history")
    assert (entry["appname"], entry["icon_path"]) == ("Orderflow", str(APP_ICON))
    assert "https://shop.example.com" in entry["body"]


def test_the_test_command_without_a_notification_server_says_so(tmp_path):
    with running_desktop(tmp_path / "desktop", notification_server=False) as bare:
        done = run_agent_command(bare, tmp_path, "--test")
    assert done.returncode == 1
    assert "no desktop notification server answered" in done.stderr
