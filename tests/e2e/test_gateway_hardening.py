"""The HTTP edge as an outsider meets it: HAProxy's listeners and files, the gateway's own
answers and headers, request ids."""

import os
import stat
from pathlib import Path

import httpx

LOOPBACK_V4 = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it


def listening_addresses(port: int) -> set[str]:
    """The local addresses (as /proc/net/tcp{,6} write them) with a listener on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:
                found.add(address)
    return found


def test_haproxy_stats_and_metrics_listen_on_loopback_only(stack):
    for setting in ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT"):
        port = int(stack.env[setting])
        assert listening_addresses(port) == {LOOPBACK_V4}, setting


def test_haproxy_files_are_private_to_the_stack(stack):
    run = stack.settings.haproxy_dir
    info = run.lstat()
    assert stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
    assert stat.S_IMODE(info.st_mode) == 0o700
    [socket] = run.glob("*/admin.sock")
    assert stat.S_ISSOCK(socket.stat().st_mode)
    assert stat.S_IMODE(socket.stat().st_mode) & 0o077 == 0, oct(socket.stat().st_mode)
    [config] = run.glob("*/haproxy.cfg")
    text = config.read_text()
    assert "bind *:" not in text and "mode 666" not in text


def test_serve_answers_an_unrouted_path_with_a_problem(stack):
    response = httpx.get(f"{stack.settings.serve_url}/nothing-here", timeout=10)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
