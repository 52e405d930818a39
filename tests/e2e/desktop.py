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
from dataclasses import dataclass, field
from pathlib import Path

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
