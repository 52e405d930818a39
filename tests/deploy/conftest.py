"""The Kubernetes overlays rendered once per run, from a copy of k8s/ that has the dev
overlay's Secret files (git-ignored, so a checkout has none); and rendered with a component
added (k8s/monitoring, k8s/logging)."""

import shutil
from collections.abc import Callable
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


def kustomized(k8s: Path) -> dict[str, list[dict]]:
    """Every overlay of `k8s` as `kubectl kustomize` renders it: overlay name -> its objects."""
    kubectl = tool("kubectl", "install kubectl (kustomize is built in)")
    objects = {}
    for overlay in OVERLAYS:
        result = run([kubectl, "kustomize", str(k8s / "overlays" / overlay)])
        assert result.returncode == 0, f"kubectl kustomize {overlay}: {result.stderr}"
        objects[overlay] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return objects


@pytest.fixture(scope="session")
def rendered(k8s_copy) -> dict[str, list[dict]]:
    """Every overlay as `kubectl kustomize` renders it: overlay name -> its objects."""
    return kustomized(k8s_copy)


@pytest.fixture(scope="session")
def rendered_with(k8s_copy, tmp_path_factory) -> Callable[[str], dict[str, list[dict]]]:
    """A function of a component's name (k8s/<name>, e.g. "monitoring"): every overlay with
    that component added (`components: [../../<name>]`, as README says), rendered, from a
    copy of k8s_copy of its own."""
    def render(component: str) -> dict[str, list[dict]]:
        workspace = tmp_path_factory.mktemp(f"with-{component}")
        shutil.copytree(k8s_copy.parent, workspace, dirs_exist_ok=True)
        for overlay in OVERLAYS:
            kustomization = workspace / "k8s" / "overlays" / overlay / "kustomization.yaml"
            document = yaml.safe_load(kustomization.read_text())
            document["components"] = [*document.get("components", []), f"../../{component}"]
            kustomization.write_text(yaml.safe_dump(document, sort_keys=False))
        return kustomized(workspace / "k8s")
    return render
