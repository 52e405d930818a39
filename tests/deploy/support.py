"""Helpers of the deployment tests: the real tools (installed by `make test`: hadolint and
kubernetes-validate from the dev extras, docker-compose from deployments/system-packages.sh,
kubectl from the machine). A missing tool fails the test that needs it, naming how to
install it; nothing is skipped."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.auth.keys import SigningKeys
from deployments.preflight import SETTINGS_CLASSES, load_settings, setting_name

OVERLAYS = ("dev", "staging", "prod")


def tool(name: str, how: str) -> str:
    """The path of `name` (this environment's bin first, then PATH), or a failure naming `how`."""
    found = shutil.which(name, path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(f"{name} is not installed; {how}")
    return found


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, **kwargs)


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[dict], kind: str, name: str) -> dict:
    (found,) = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    return found


def service_settings() -> set[str]:
    """The environment variable of every setting of the four services (not `make run`'s own)."""
    return {setting_name(model, field) for name, model in SETTINGS_CLASSES.items() if name != "stack"
            for field in model.model_fields}


def dotenv_keys(path: Path, *, commented: bool = False) -> set[str]:
    """The variables a dotenv file sets (with `commented`, also those shown commented out)."""
    keys = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if commented and line.startswith("#"):
            line = line.lstrip("# ")
        elif line.startswith("#"):
            continue
        key, sep, _ = line.partition("=")
        if sep and key.isupper():
            keys.add(key)
    return keys


def assert_services_accept(monkeypatch, environment: dict[str, str]):
    """The services' settings, read from `environment` alone, are valid and the signing key loads."""
    for name in list(os.environ):
        if name in service_settings() or name.startswith(("ORDERFLOW_", "RAY_")):
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()  # BadSettings names any value a service would refuse
    SigningKeys.from_settings(settings.auth)


@contextlib.contextmanager
def container_gateway(stack) -> Iterator[subprocess.Popen]:
    """nginx with the configuration the gateway container renders for `stack`
    (deployments.gateway_container), answering its health check; stopped at the end."""
    from deployments import gateway_container, healthcheck
    from deployments.stack import find_nginx
    from tests.support import wait_for

    nginx = find_nginx("nginx")
    assert nginx, "nginx is not installed (deployments/system-packages.sh installs it)"
    config = gateway_container.render(stack)
    process = subprocess.Popen([nginx, "-e", "stderr", "-c", str(config)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        def answers() -> bool:
            assert process.poll() is None, process.stderr.read()
            return healthcheck.failure(f"{stack.gateway_url}/gateway/health", timeout_s=1) is None

        wait_for(answers, "the gateway container's nginx to answer its health check", timeout_s=10)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)
            process.wait(10)
