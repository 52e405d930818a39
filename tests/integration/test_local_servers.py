"""deployments/local-servers.sh starting a server for real, without touching the shared
ones: in a network and mount namespace of its own (unshare) no Redis listens on
127.0.0.1:6379 and /run, /var/lib/redis and /var/log/redis are private, so the script
starts the installed redis-server there; the trap shuts that Redis down whatever happens."""

import subprocess
import tempfile
from pathlib import Path

from deployments.preflight import LOCAL_SERVERS
from tests.unit.support import readable_by_anyone

IN_PRIVATE_NAMESPACES = """
set -u
ip link set lo up
for d in /run /var/lib/redis /var/log/redis; do mkdir -p $d; mount -t tmpfs none $d; done
trap 'redis-cli -h 127.0.0.1 shutdown nosave >/dev/null 2>&1' EXIT
runuser -u nobody -- {script} redis; echo "as nobody: $?"
{script} redis; echo "as root: $?"
redis-cli -h 127.0.0.1 ping
{script} redis; echo "again: $?"
"""


def test_a_stopped_redis_is_started_as_root_and_only_named_without_root():
    with tempfile.TemporaryDirectory(prefix="orderflow-scripts-") as directory:
        Path(directory).chmod(0o755)
        script = readable_by_anyone(LOCAL_SERVERS, Path(directory))
        result = subprocess.run(["unshare", "--net", "--mount", "bash", "-c",
                                 IN_PRIVATE_NAMESPACES.format(script=script)],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["as nobody: 1", "orderflow: starting redis ...", "as root: 0", "PONG",
                                          "again: 0"]
    assert result.stderr.splitlines() == ["orderflow: redis installed but not running. Start them with:",
                                          f"  sudo {script} redis"]


def test_local_servers_that_answer_are_left_alone():
    # The three shared servers run: nothing is started, nothing said (as root or not).
    with tempfile.TemporaryDirectory(prefix="orderflow-scripts-") as directory:
        Path(directory).chmod(0o755)
        script = readable_by_anyone(LOCAL_SERVERS, Path(directory))
        for command in ([str(script)], ["runuser", "-u", "nobody", "--", str(script)]):
            result = subprocess.run(command, capture_output=True, text=True, timeout=60)
            assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), command
