"""The systemd user unit and the XDG autostart entry shipped with the agent pass the real
tools' checks (systemd-analyze, desktop-file-validate; Debian: systemd, desktop-file-utils)
and start the agent's console script."""

import configparser
import os
import subprocess
import sys
from pathlib import Path

import agent

FILES = Path(agent.__file__).parent
UNIT, AUTOSTART = FILES / "orderflow-agent.service", FILES / "orderflow-agent.desktop"


def test_the_systemd_user_unit_verifies_where_the_readme_installs_it(tmp_path):
    """Installed as the README says: the unit in ~/.config/systemd/user, the agent in
    ~/.local/bin (here the console script of this environment)."""
    home, runtime = tmp_path / "home", tmp_path / "run"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "orderflow-agent").symlink_to(Path(sys.executable).with_name("orderflow-agent"))
    units = home / ".config" / "systemd" / "user"
    units.mkdir(parents=True)
    (units / UNIT.name).write_text(UNIT.read_text())
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime), "XDG_CONFIG_HOME": str(home / ".config")}
    done = subprocess.run(["systemd-analyze", "--user", "verify", str(units / UNIT.name)],
                          env=env, capture_output=True, text=True, timeout=60)
    # Unknown keys are only warned about, so any output is a failure too.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_the_unit_does_not_restart_an_agent_that_has_no_usable_login():
    """`orderflow-agent` exits with 2 when it has no login (or the account is not staff)."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string(UNIT.read_text())
    assert unit["Service"]["Restart"] == "on-failure"
    assert unit["Service"]["RestartPreventExitStatus"] == "2"
    assert unit["Service"]["ExecStart"].endswith("/orderflow-agent")


def test_the_autostart_entry_is_a_valid_desktop_file_that_starts_the_agent():
    done = subprocess.run(["desktop-file-validate", str(AUTOSTART)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read_string(AUTOSTART.read_text())
    assert entry["Desktop Entry"]["Exec"] == "orderflow-agent"
