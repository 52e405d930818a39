"""The agent without a server: what it keeps on disk, that it shows each notification once,
in order, and keeps in its log what no notification server took. (That it says so once, on a
real session bus, is in tests/e2e/test_desktop_notifications.py.)"""

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import main, resolve_settings
from agent.desktop import Alert
from agent.runner import Agent
from agent.settings import AgentSettings
from agent.state import AgentState, Session
from tests.support import wait_for


def item(notification_id: int, **extra) -> dict:
    return {"id": notification_id, "title": f"T{notification_id}", "message": "m", "order_id": "o",
            "url": f"http://shop/admin/orders/{notification_id}", "kind": "order_created", "status": "new",
            "urgency": "normal"} | extra


class Alerts:
    def __init__(self, accepted=True):
        self.shown: list[Alert] = []
        self.accepted = accepted

    async def show(self, alert: Alert):
        self.shown.append(alert)
        return 1.0 if self.accepted else None


def make_agent(tmp_path, alerts) -> Agent:
    settings = AgentSettings(server="http://shop", config_dir=tmp_path / "config")
    return Agent(settings, credentials=None, alerts=alerts, state=AgentState(settings.config_dir), api=None)


def test_state_files_are_private_and_survive_a_restart(tmp_path):
    state = AgentState(tmp_path / "orderflow")
    assert state.last_id is None and state.session is None
    state.save_session(Session("https://shop.example.com", "r1"))
    state.save_last_id(41)
    state.save_last_id(42)
    again = AgentState(tmp_path / "orderflow")
    assert again.session == Session("https://shop.example.com", "r1") and again.last_id == 42
    for name in ("session", "last-notification-id"):
        assert stat.S_IMODE((tmp_path / "orderflow" / name).stat().st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "orderflow").iterdir()) == ["last-notification-id", "session"]
    state.forget_session()
    assert AgentState(tmp_path / "orderflow").session is None


@pytest.mark.parametrize("text", ["", "r1", "[]", '{"server": "https://shop.example.com"}'])
def test_an_unreadable_session_counts_as_none(tmp_path, text):
    (tmp_path / "session").write_text(text)
    assert AgentState(tmp_path).session is None


def test_a_garbled_last_id_counts_as_none(tmp_path):
    (tmp_path / "last-notification-id").write_text("12x")
    assert AgentState(tmp_path).last_id is None


async def test_each_notification_is_shown_once(tmp_path):
    alerts = Alerts()
    agent = make_agent(tmp_path, alerts)
    agent.last_id = 10
    for n in [9, 10, 11, 12, 11, 12, 13]:  # catch-up overlapping pushes
        await agent.deliver(item(n))
    assert [a.title for a in alerts.shown] == ["T11", "T12", "T13"]
    assert AgentState(tmp_path / "config").last_id == 13

    restarted = make_agent(tmp_path, alerts)  # a restart reads the last id from disk
    await restarted.deliver(item(13))
    await restarted.deliver(item(14, urgency="critical"))
    assert [a.title for a in alerts.shown] == ["T11", "T12", "T13", "T14"]
    assert alerts.shown[-1].urgency == "critical" and alerts.shown[-1].url == "http://shop/admin/orders/14"


async def test_without_a_notification_server_messages_are_kept_in_the_log(tmp_path, caplog):
    from actors.common.logging import JsonFormatter

    caplog.set_level(logging.INFO, logger="orderflow")
    agent = make_agent(tmp_path, Alerts(accepted=False))
    agent.last_id = 0
    for n in (1, 2, 3):
        await agent.deliver(item(n))
    lines = [json.loads(JsonFormatter("agent").format(r)) for r in caplog.records if r.name == "orderflow.agent"]
    assert [line["notification_id"] for line in lines] == [1, 2, 3]
    assert all(line["shown"] is False and "kept in the log" in line["message"] for line in lines)
    assert agent.last_id == 3


@pytest.mark.parametrize(("server", "ws"), [("http://127.0.0.1:8088", "ws://127.0.0.1:8088/notifications/ws"),
                                            ("https://shop.example.com/", "wss://shop.example.com/notifications/ws")])
def test_the_websocket_address_follows_the_server(server, ws):
    assert AgentSettings(server=server).ws_url == ws


@pytest.mark.parametrize("server", ["shop.example.com", "ftp://shop.example.com", "http://", ""])
def test_a_server_that_is_not_a_web_address_is_refused_clearly(server, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("ORDERFLOW_AGENT_SERVER", server)
    assert main(["--test"]) == 2
    assert "ORDERFLOW_AGENT_SERVER: the server must be the gateway's address" in capsys.readouterr().err


def test_the_server_comes_from_the_command_line_the_environment_or_the_last_login(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("ORDERFLOW_AGENT_SERVER", raising=False)
    assert resolve_settings(None).server == "http://127.0.0.1:8088"
    AgentState(tmp_path / "orderflow").save_session(Session("https://shop.example.com", "r1"))
    assert resolve_settings(None).server == "https://shop.example.com"
    monkeypatch.setenv("ORDERFLOW_AGENT_SERVER", "https://staging.example.com")
    assert resolve_settings(None).server == "https://staging.example.com"
    assert resolve_settings("http://10.0.0.5:8088/").server == "http://10.0.0.5:8088"


def test_a_second_agent_for_the_same_user_exits_instead_of_showing_everything_twice(tmp_path):
    """Autostart and the systemd unit both installed start two agents."""
    agent = Path(sys.executable).with_name("orderflow-agent")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state"),
           "ORDERFLOW_AGENT_SERVER": "http://127.0.0.1:9", "ORDERFLOW_AGENT_EMAIL": "staff@example.com",
           "ORDERFLOW_AGENT_PASSWORD": "whatever it is"}
    lock = tmp_path / "config" / "orderflow" / "agent.lock"
    first = subprocess.Popen([str(agent)], env=env, stderr=subprocess.DEVNULL)  # retries its unreachable server
    try:
        wait_until_it_holds(lock, first)
        second = subprocess.run([str(agent)], env=env, capture_output=True, text=True, timeout=30)
        assert second.returncode == 0
        assert f"another orderflow-agent (pid {first.pid}) is running" in second.stderr
        assert first.poll() is None
    finally:
        first.terminate()
        assert first.wait(15) == 0
    again = subprocess.Popen([str(agent)], env=env, stderr=subprocess.DEVNULL)  # the lock went with the process
    try:
        wait_until_it_holds(lock, again)
    finally:
        again.terminate()
        again.wait(15)


def wait_until_it_holds(lock: Path, agent: subprocess.Popen) -> None:
    wait_for(lambda: agent.poll() is not None or (lock.exists() and lock.read_text() == str(agent.pid)),
             "the agent to take its lock", timeout_s=30)
    assert agent.poll() is None, "the agent exited instead of taking its lock"
