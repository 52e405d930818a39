"""deployments/system-packages.sh and local-servers.sh, run for real: installed already,
they do nothing (no apt-get at all); a package missing (a copy of this machine's dpkg
database without it, through dpkg's own DPKG_ADMINDIR) is installed as root, and without
root the one command to run is printed. apt-get itself is replaced by a recorder: a test
must not install packages on the machine. Also what `orderflow` tells about servers."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from deployments.preflight import SYSTEM_PACKAGES, Server, as_root
from deployments.stack import find_nginx
from tests.unit.support import readable_by_anyone

@pytest.fixture
def shared_tmp():
    """A temporary directory the `nobody` user can read too (pytest's tmp_path is private)."""
    path = Path(tempfile.mkdtemp(prefix="orderflow-scripts-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def apt_recorder(shared_tmp):
    """A bin directory whose `apt-get` only records its arguments."""
    tmp_path = shared_tmp
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt-get.log"
    log.touch(mode=0o666)
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    (bin_dir / "apt-get").chmod(0o755)
    return bin_dir, log


def without_package(tmp_path: Path, package: str) -> Path:
    """A copy of the dpkg database in which `package` is not installed."""
    admin = tmp_path / "dpkg"
    admin.mkdir()
    stanzas = Path("/var/lib/dpkg/status").read_text().split("\n\n")
    kept = [s for s in stanzas if not s.startswith(f"Package: {package}\n")]
    assert len(kept) == len(stanzas) - 1, f"{package} is installed here"
    (admin / "status").write_text("\n\n".join(kept))
    return admin


def run(command: list[str], *, path_first: Path, as_nobody: bool = False, **env) -> subprocess.CompletedProcess:
    environment = os.environ | {"PATH": f"{path_first}:{os.environ['PATH']}"} | env
    if as_nobody:
        command = ["runuser", "-u", "nobody", "--", "env", *(f"{k}={v}" for k, v in environment.items()
                                                               if k in ("PATH", *env)), *command]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=60)


@pytest.mark.parametrize("purpose", ["run", "test"])
def test_installed_already_does_nothing(apt_recorder, purpose):
    bin_dir, log = apt_recorder
    result = run([str(SYSTEM_PACKAGES), purpose], path_first=bin_dir)
    assert result.returncode == 0 and result.stdout == result.stderr == ""
    assert log.read_text() == ""  # not even apt-get update


def test_a_missing_package_is_installed_as_root(apt_recorder, shared_tmp):
    bin_dir, log = apt_recorder
    admin = without_package(shared_tmp, "dunst")
    result = run([str(SYSTEM_PACKAGES), "test"], path_first=bin_dir, DPKG_ADMINDIR=str(admin))
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == ["update -qq", "install -y -qq --no-install-recommends dunst"]


def test_without_root_the_one_command_is_printed(apt_recorder, shared_tmp):
    bin_dir, log = apt_recorder
    admin = without_package(shared_tmp, "nginx")
    script = readable_by_anyone(SYSTEM_PACKAGES, shared_tmp)
    result = run([str(script), "run"], path_first=bin_dir, as_nobody=True, DPKG_ADMINDIR=str(admin))
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["orderflow: missing system packages: nginx. Install them with:",
                                          f"  sudo {script} run"]
    assert log.read_text() == ""


def test_only_known_purposes():
    result = subprocess.run([str(SYSTEM_PACKAGES), "everything"], capture_output=True, text=True)
    assert result.returncode == 2 and "usage" in result.stderr


def make_commands(target: str) -> str:
    """What `make <target>` would run (recursive makes included), without running it."""
    return subprocess.run(["make", "-n", "--no-print-directory", target], capture_output=True, text=True,
                          cwd=SYSTEM_PACKAGES.parents[1], timeout=60, check=True).stdout


def test_unit_tests_need_no_servers():
    # Unit tests talk to no server: `make test-unit` must not insist on starting them.
    assert "deployments/system-packages.sh test" in make_commands("test-unit")
    assert "local-servers.sh" not in make_commands("test-unit")
    for target in ("test", "test-integration", "test-e2e"):
        assert "deployments/local-servers.sh" in make_commands(target), target


def test_nginx_is_found_only_where_it_is(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    assert find_nginx("nginx", str(empty)) is None
    (empty / "nginx").symlink_to(shutil.which("nginx", path="/usr/sbin:/usr/local/sbin"))
    assert find_nginx("nginx", str(empty)) == str(empty / "nginx")
    assert find_nginx("nginx") is not None  # PATH and the sbin directories a user's PATH lacks


@pytest.mark.parametrize(("url", "local"), [
    ("redis://127.0.0.1:6379/0", True), ("redis://localhost/0", True), ("redis://127.0.0.1:6380/0", False),
    ("redis://cache.internal:6379/0", False),
])
def test_only_servers_local_servers_sh_starts_count_as_this_machines(url, local):
    assert Server("Redis", "REDIS_URL", url, "redis", 6379).on_this_machine is local


def test_commands_for_root_have_no_sudo():
    assert as_root("deployments/local-servers.sh redis") == "deployments/local-servers.sh redis"
