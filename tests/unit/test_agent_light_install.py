"""The agent runs with only agent/requirements.txt installed (beside the orderflow wheel
installed with --no-deps): a warehouse PC needs no Ray, pandas or database drivers."""

import json
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "agent" / "requirements.txt"


def agent_requirements() -> list[Requirement]:
    lines = [line.strip() for line in REQUIREMENTS.read_text().splitlines()]
    return [Requirement(line) for line in lines if line and not line.startswith("#")]


def installed_closure(names: set[str]) -> set[str]:
    """The distributions `names` pull in when installed (extras not asked for are left out)."""
    seen, todo = set(), [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        for text in needs:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return seen


def test_the_agents_requirements_are_pinned_as_in_pyproject():
    project = {canonicalize_name(r.name): r.specifier
               for r in map(Requirement, tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])}
    for requirement in agent_requirements():
        assert project.get(canonicalize_name(requirement.name)) == requirement.specifier, requirement


# Run in a child process: every import of a distribution outside the allowed set fails, as it
# would where only agent/requirements.txt is installed (optional imports, such as httpx's
# command line, then take their fallback as they would there).
ONLY_ALLOWED = """
import json, re, sys, importlib.abc
from importlib.metadata import packages_distributions

allowed, owners = set(json.loads(sys.argv[1])), packages_distributions()

class OnlyAllowed(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        dists = {re.sub(r"[-_.]+", "-", d).lower() for d in owners.get(name.partition(".")[0], [])}
        if dists and not dists & allowed:
            raise ModuleNotFoundError(f"No module named {name!r} (not installed by agent/requirements.txt)", name=name)

sys.meta_path.insert(0, OnlyAllowed())
import agent.cli, agent.runner, agent.desktop, agent.api
sys.exit(agent.cli.main(sys.argv[2:]))
"""


def run_with_only_the_agents_requirements(tmp_path, *args: str, **env) -> subprocess.CompletedProcess:
    allowed = installed_closure({r.name for r in agent_requirements()}) | {"orderflow"}
    env |= {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_STATE_HOME": str(tmp_path / "state"), "DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path}/no-bus"}
    return subprocess.run([sys.executable, "-c", ONLY_ALLOWED, json.dumps(sorted(allowed)), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_the_agent_runs_with_only_its_requirements(tmp_path):
    """Its commands' paths as far as they go here: HTTP (a login to a closed port), the
    D-Bus backend (no session bus), the settings and state files. The WebSocket client is
    imported with agent.runner."""
    login = run_with_only_the_agents_requirements(tmp_path, "--server", "http://127.0.0.1:9", "login",
                                                  ORDERFLOW_AGENT_EMAIL="staff@example.com",
                                                  ORDERFLOW_AGENT_PASSWORD="a long enough password")
    assert login.returncode == 1 and "login failed" in login.stderr, login.stderr
    logout = run_with_only_the_agents_requirements(tmp_path, "--server", "http://127.0.0.1:9", "logout")
    assert (logout.returncode, logout.stderr.strip()) == (0, f"orderflow-agent: no saved session in "
                                                              f"{tmp_path}/config/orderflow; nothing to do.")
    test = run_with_only_the_agents_requirements(tmp_path, "--test")  # no session bus here
    assert test.returncode == 1 and "no desktop notification server answered" in test.stderr, test.stderr
