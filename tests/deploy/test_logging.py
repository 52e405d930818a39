"""Log aggregation in Kubernetes and Compose: the k8s/logging component (Loki, the promtail
DaemonSet, a promtail sidecar in every Ray pod) renders into every overlay and passes the
Kubernetes schemas (strict); both promtail configurations ship to
Loki with the labels the README's queries use."""

import kubernetes_validate
import pytest
import yaml

from deployments.stack import ROOT
from tests.deploy.support import OVERLAYS, named

STANDARD_KINDS = {"ConfigMap", "StatefulSet", "Service", "NetworkPolicy", "ServiceAccount", "Role", "RoleBinding",
                  "DaemonSet"}
LOGGING_NAMES = {"loki", "promtail", "loki-from-shippers-and-grafana"}


@pytest.fixture(scope="module")
def logged(rendered_with) -> dict[str, list[dict]]:
    """Every overlay with the logging component added (`components: [../../logging]`)."""
    return rendered_with("logging")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_logging_component_passes_the_schemas(logged, overlay):
    objects = logged[overlay]
    mine = [o for o in objects if o["kind"] in STANDARD_KINDS and o["metadata"]["name"] in LOGGING_NAMES]
    assert {(o["kind"], o["metadata"]["name"]) for o in mine} >= {
        ("StatefulSet", "loki"), ("Service", "loki"), ("DaemonSet", "promtail"), ("ConfigMap", "promtail"),
        ("NetworkPolicy", "loki-from-shippers-and-grafana")}
    for obj in mine:
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
        assert obj["metadata"]["namespace"] == f"orderflow-{overlay}"


def test_every_ray_pod_ships_its_replicas_log_files(logged):
    cluster = named(logged["prod"], "RayService", "orderflow")["spec"]["rayClusterConfig"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        pod = group["template"]["spec"]
        [sidecar] = [c for c in pod["containers"] if c["name"] == "promtail"]
        ray = pod["containers"][0]
        ray_tmp = next(m for m in ray["volumeMounts"] if m["mountPath"] == "/tmp/ray")["name"]
        assert {"name": ray_tmp, "mountPath": "/ray", "readOnly": True} in sidecar["volumeMounts"]
        assert {v["name"] for v in pod["volumes"]} >= {ray_tmp, "promtail-config", "promtail-positions"}


def promtail_configs(logged) -> list[dict]:
    data = named(logged["prod"], "ConfigMap", "promtail")["data"]
    compose = yaml.safe_load((ROOT / "deployments" / "compose-promtail.yml").read_text())
    return [yaml.safe_load(data["pods.yaml"]), yaml.safe_load(data["ray.yaml"]), compose]


def test_every_promtail_ships_to_loki_labelled_by_job_and_service(logged):
    for config in promtail_configs(logged):
        assert [c["url"] for c in config["clients"]] == ["http://loki:3100/loki/api/v1/push"]
        for job in config["scrape_configs"]:
            labels = [s["labels"] for s in job["pipeline_stages"] if "labels" in s]
            assert labels == [{"service": None}], job["job_name"]
            static = [t["labels"]["job"] for t in job.get("static_configs", [])]
            relabelled = [r["replacement"] for r in job.get("relabel_configs", []) if r.get("target_label") == "job"]
            assert static + relabelled == ["orderflow"], job["job_name"]


def test_the_ray_sidecars_read_the_worker_files(logged):
    _, ray, compose = promtail_configs(logged)
    assert ray["scrape_configs"][0]["static_configs"][0]["labels"]["__path__"] == \
        "/ray/session_latest/logs/worker-*.{err,out}"
    paths = [t["labels"]["__path__"] for job in compose["scrape_configs"] for t in job.get("static_configs", [])]
    assert paths == ["/ray/session_*/logs/worker-*.{err,out}"]
