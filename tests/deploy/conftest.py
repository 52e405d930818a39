"""The Kubernetes overlays rendered once per run, from a copy of k8s/ that has the dev
overlay's Secret files (git-ignored, so a checkout has none)."""

import shutil
from pathlib import Path

import pytest
import yaml

from deployments import dev_secrets
from deployments.stack import ROOT
from tests.deploy.support import OVERLAYS, run, tool


@pytest.fixture(scope="session")
def k8s_copy(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(ROOT / "k8s", copy, ignore=shutil.ignore_patterns("secrets.env", "*.pem"))
    shutil.copytree(ROOT / "monitoring", copy.parent / "monitoring")  # k8s/base includes monitoring/grafana
    dev_secrets.write(copy / "overlays" / "dev")  # what `make k8s-dev-secrets` does
    return copy


@pytest.fixture(scope="session")
def rendered(k8s_copy) -> dict[str, list[dict]]:
    """Every overlay as `kubectl kustomize` renders it: overlay name -> its objects."""
    kubectl = tool("kubectl", "install kubectl (kustomize is built in)")
    objects = {}
    for overlay in OVERLAYS:
        result = run([kubectl, "kustomize", str(k8s_copy / "overlays" / overlay)])
        assert result.returncode == 0, f"kubectl kustomize {overlay}: {result.stderr}"
        objects[overlay] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return objects
