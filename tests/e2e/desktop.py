"""A real desktop for the notification tests: Xvfb, a private D-Bus session bus and the
dunst notification server on it, all started by the fixture and stopped afterwards.

`dunstctl` (history, action, context, count) and screenshots (ImageMagick `import`) talk to
the same display and bus. A button is pressed through dunst's own context menu, whose "dmenu"
is a script here that picks the wanted entry. Debian packages: xvfb, dbus (dbus-daemon),
dunst, imagemagick.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from deployments.stack import DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD
from tests.support import wait_for

DUNSTRC = """
[global]
    monitor = 0
    follow = none
    width = 420
    height = 200
    origin = top-right
    offset = 20x20
    font = Monospace 10
    format = "<b>%a</b>\\n<b>%s</b>\\n%b"
    show_indicators = yes
    sticky_history = yes
    history_length = 500
    idle_threshold = 0
    # Shown until acted on, so a test can click it.
    ignore_dbusclose = no
[urgency_low]
    timeout = 0
[urgency_normal]
    timeout = 0
    background = "#1e2a38"
    foreground = "#ffffff"
[urgency_critical]
    timeout = 0
    background = "#8b1e1e"
    foreground = "#ffffff"
"""


@dataclass
class Desktop:
    display: str
    bus_address: str
    directory: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {"DISPLAY": self.display, "DBUS_SESSION_BUS_ADDRESS": self.bus_address}

    def run(self, *command: str, timeout_s: float = 10) -> subprocess.CompletedProcess:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                              env={**os.environ, **self.env})

    def history(self) -> list[dict]:
        """Notifications dunst has closed (after a click, or `close-all`), newest first."""
        result = self.run("dunstctl", "history")
        assert result.returncode == 0, result.stderr
        entries = json.loads(result.stdout)["data"][0]
        return [{k: v["data"] for k, v in entry.items()} for entry in entries]

    def press(self, button: str, summary: str) -> None:
        """Press a notification's button, as a user does from dunst's context menu
        (`dunstctl context` lists every action as `#<button> (<summary>) [<id>,<key>]`)."""
        entry = f"#{button} ({summary}) ["
        offered = self.directory / "menu-offered"
        offered.unlink(missing_ok=True)
        (self.directory / "menu-choice").write_text(entry)
        result = self.run("dunstctl", "context")
        assert result.returncode == 0, result.stderr
        wait_for(lambda: offered.exists() and entry in offered.read_text(),
                 f"dunst's context menu to offer {entry!r} (what it offered is in {offered})")

    def start_notification_server(self, dunstrc: str = DUNSTRC) -> None:
        """dunst on this desktop's bus; its context menu's "dmenu" is a script that picks
        the entry `press` asks for."""
        menu = self.directory / "choose-menu-entry"
        menu.write_text(f'#!/bin/sh\ntee "{self.directory}/menu-offered" | grep -m1 -F -f "{self.directory}/menu-choice"\n')
        menu.chmod(0o755)
        rc = self.directory / "dunstrc"
        rc.write_text(dunstrc.replace("[global]\n", f"[global]\n    dmenu = {menu}\n", 1))
        self.processes.append(subprocess.Popen(
            ["dunst", "-config", str(rc)], env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL, stderr=(self.directory / "dunst.log").open("w")))
        wait_for(lambda: self.run("dunstctl", "count", "displayed").returncode == 0, "dunst")

    def bus_clients(self) -> int:
        """How many connections the session bus has (this query's own included)."""
        result = self.run("dbus-send", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                          "org.freedesktop.DBus.ListNames")
        assert result.returncode == 0, result.stderr
        return result.stdout.count('":1.')

    def displayed(self) -> int:
        return int(self.run("dunstctl", "count", "displayed").stdout.strip() or 0)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        result = self.run("import", "-window", "root", str(path), timeout_s=30)
        assert result.returncode == 0, result.stderr
        return path


def _free_display() -> int:
    number = 90 + os.getpid() % 400
    while Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
        number += 1
    return number


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def missing_programs() -> list[str]:
    return [p for p in ("Xvfb", "dbus-daemon", "dunst", "dunstctl", "import") if shutil.which(p) is None]


@contextlib.contextmanager
def running_desktop(directory: Path, *, notification_server: bool = True, dunstrc: str = DUNSTRC):
    """Xvfb + a private session bus (+ dunst unless told otherwise), torn down at the end."""
    missing = missing_programs()
    assert not missing, f"install the Debian packages for: {missing} (xvfb, dbus, dunst, imagemagick)"
    directory.mkdir(parents=True, exist_ok=True)
    number = _free_display()
    socket = directory / "bus"
    desktop = Desktop(display=f":{number}", bus_address=f"unix:path={socket}", directory=directory)
    try:
        xvfb = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                                stdout=subprocess.DEVNULL, stderr=(directory / "xvfb.log").open("w"))
        desktop.processes.append(xvfb)
        wait_for(lambda: Path(f"/tmp/.X11-unix/X{number}").exists() or xvfb.poll() is not None, "Xvfb")
        desktop.processes.append(subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", "--nopidfile", f"--address=unix:path={socket}"],
            stdout=subprocess.DEVNULL, stderr=(directory / "dbus.log").open("w")))
        wait_for(socket.exists, "dbus-daemon")
        if notification_server:
            desktop.start_notification_server(dunstrc)
        yield desktop
    finally:
        for process in reversed(desktop.processes):
            _stop(process)


class AgentProcess:
    """orderflow-agent signed in as the development admin, on `desktop`, with its log file and a
    "browser" that writes down the URLs it is asked to open."""

    def __init__(self, home: Path, desktop, server: str):
        self.home = home
        self.opened = home / "opened-urls.txt"
        browser = home / "record-browser"
        browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> "{self.opened}"\n')
        browser.chmod(0o755)
        self.log_file = home / "state" / "orderflow" / "agent.log"
        env = {**os.environ, **desktop.env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
               "XDG_STATE_HOME": str(home / "state"), "BROWSER": str(browser),
               "ORDERFLOW_AGENT_SERVER": server, "ORDERFLOW_AGENT_EMAIL": DEV_ADMIN_EMAIL,
               "ORDERFLOW_AGENT_PASSWORD": DEV_ADMIN_PASSWORD}
        agent = Path(sys.executable).with_name("orderflow-agent")
        self.process = subprocess.Popen([str(agent)], env=env, stdout=subprocess.DEVNULL,
                                        stderr=(home / "agent-stderr.log").open("w"))

    def log(self) -> list[dict]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line.strip()]

    def shown(self) -> list[dict]:
        return [e for e in self.log() if e.get("notification_id") is not None and e.get("shown")]

    def opened_urls(self) -> list[str]:
        return self.opened.read_text().split() if self.opened.exists() else []

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
