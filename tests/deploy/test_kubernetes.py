"""k8s/: every overlay renders with `kubectl kustomize`; every object it renders passes a
schema check (Kubernetes' own objects with kubernetes-validate, strict; the RayService and
its RayCluster with the openAPIV3Schema of the KubeRay CRDs); serveConfigV2 is what
deployments/serve_config.yaml says and parses with Ray's own ServeDeploySchema; every
setting has its place in the ConfigMap or the Secret."""

import copy
import json
import os
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import ray
import yaml
from dotenv import dotenv_values
from ray.serve.schema import ServeDeploySchema

from deployments import dev_secrets, kuberay
from deployments.stack import ROOT
from tests.deploy.support import OVERLAYS, assert_services_accept, dotenv_keys, named, of_kind, service_settings

# A current and the newest Kubernetes release kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.33.0", kubernetes_validate.latest_version())
# The KubeRay CRDs (the v1.7 line). No package registry this project can use (PyPI, npm,
# Debian) ships them, so they are read from KUBERAY_CRD_DIR, by default the team's reference
# copy (shared/reference/kuberay-crds beside this checkout, or the workplace's /work/shared for
# a clone made elsewhere, as CI's is); they are not copied into the project. Without them the
# CRD tests fail: take `ray.io_rayservices.yaml` and `ray.io_rayclusters.yaml` from the
# kuberay-operator Helm chart's crds/ of the release you run.
REFERENCE_CRDS = [ROOT.parent / "shared" / "reference" / "kuberay-crds", Path("/work/shared/reference/kuberay-crds")]
KUBERAY_CRDS = Path(os.environ.get("KUBERAY_CRD_DIR")
                    or next((path for path in REFERENCE_CRDS if path.is_dir()), REFERENCE_CRDS[0]))
CONFIG_ENV = ROOT / "k8s" / "base" / "config.env"


# --- Kubernetes' own objects ------------------------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_renders_into_its_own_namespace(rendered, overlay):
    objects = rendered[overlay]
    (namespace,) = of_kind(objects, "Namespace")
    assert namespace["metadata"]["name"] == f"orderflow-{overlay}"
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {f"orderflow-{overlay}"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_passes_a_schema_check(rendered, overlay, version, crd_schemas):
    checked = []
    for obj in rendered[overlay]:
        if obj["apiVersion"].startswith("ray.io/"):
            jsonschema.validate(obj, crd_schemas[obj["kind"]])
        else:
            kubernetes_validate.validate(obj, version, strict=True)
        checked.append(obj["kind"])
    assert {"RayService", "StatefulSet", "Deployment", "Job", "Ingress", "NetworkPolicy",
            "PodDisruptionBudget", "PersistentVolumeClaim", "ConfigMap", "Service"} <= set(checked)


def test_the_strict_check_refuses_an_unknown_field(rendered):
    gateway = copy.deepcopy(named(rendered["prod"], "Deployment", "gateway"))
    gateway["spec"]["template"]["spec"]["containers"][0]["imagePullPolicey"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(gateway, KUBERNETES_VERSIONS[0], strict=True)


def test_the_data_stores_are_stateful_sets_with_volumes(rendered):
    for name in ("postgres", "redis", "rabbitmq"):
        stateful_set = named(rendered["prod"], "StatefulSet", name)
        assert stateful_set["spec"]["volumeClaimTemplates"], name
        assert named(rendered["prod"], "Service", name)["spec"]["clusterIP"] == "None"


def test_serve_is_reached_only_from_the_gateway_and_the_data_stores_only_from_the_services(rendered):
    policies = of_kind(rendered["prod"], "NetworkPolicy")
    assert any(p["spec"]["podSelector"] == {} and p["spec"]["policyTypes"] == ["Ingress"] and "ingress" not in p["spec"]
               for p in policies), "no default deny"
    serve_port = [p for p in policies if {"port": 8000} in [port for rule in p["spec"].get("ingress", [])
                                                            for port in rule.get("ports", [])]]
    sources = {(json.dumps(p["spec"]["podSelector"]), json.dumps(rule["from"]))
               for p in serve_port for rule in p["spec"]["ingress"]}
    assert sources == {  # the gateway, and the KubeRay operator's health check of the head's proxy
        (json.dumps({"matchLabels": {"ray.io/is-ray-node": "yes"}}),
         json.dumps([{"podSelector": {"matchLabels": {"app.kubernetes.io/component": "gateway"}}}])),
        (json.dumps({"matchLabels": {"ray.io/node-type": "head"}}),
         json.dumps([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kuberay-operator"}}}])),
    }
    (datastores,) = [p for p in policies if p["spec"]["podSelector"].get("matchLabels") == {"app.kubernetes.io/component": "datastore"}]
    assert [list(source["podSelector"]["matchLabels"].items()) for source in datastores["spec"]["ingress"][0]["from"]] == [
        [("ray.io/is-ray-node", "yes")], [("app.kubernetes.io/component", "migrate")]]


def test_the_websocket_path_has_its_own_long_timeouts(rendered):
    ingress = named(rendered["prod"], "Ingress", "orderflow-websocket")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    (path,) = ingress["spec"]["rules"][0]["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/notifications/ws", "Exact")


def test_prod_has_more_workers_and_stricter_limits(rendered):
    def workers(overlay):
        (group,) = named(rendered[overlay], "RayService", "orderflow")["spec"]["rayClusterConfig"]["workerGroupSpecs"]
        return group

    assert workers("prod")["maxReplicas"] > workers("staging")["maxReplicas"] > workers("dev")["maxReplicas"]
    assert workers("prod")["minReplicas"] > workers("dev")["minReplicas"]
    for overlay in OVERLAYS:
        assert workers(overlay)["minReplicas"] <= workers(overlay)["replicas"] <= workers(overlay)["maxReplicas"]
    head = named(rendered["prod"], "RayService", "orderflow")["spec"]["rayClusterConfig"]["headGroupSpec"]
    resources = head["template"]["spec"]["containers"][0]["resources"]
    assert resources["requests"] == resources["limits"]  # Guaranteed QoS in prod
    images = {c["image"] for overlay in ("staging", "prod") for o in rendered[overlay]
              for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []) if "orderflow" in c["image"]}
    assert images == {"registry.example.com/orderflow:0.1.0"}


def test_the_ray_pods_read_the_generated_config_map_and_secret(rendered):
    """The hash-suffixed names of the generators reach the RayService (kustomizeconfig.yaml),
    so a changed setting upgrades the Ray cluster."""
    objects = rendered["dev"]
    (config_map,) = [m for m in of_kind(objects, "ConfigMap") if m["metadata"]["name"].startswith("orderflow-config-")]
    (secret,) = of_kind(objects, "Secret")
    cluster = named(objects, "RayService", "orderflow")["spec"]["rayClusterConfig"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        (container,) = group["template"]["spec"]["containers"]
        assert container["envFrom"] == [{"configMapRef": {"name": config_map["metadata"]["name"]}},
                                        {"secretRef": {"name": secret["metadata"]["name"]}}]
        assert container["image"] == "orderflow:dev"


# --- KubeRay ------------------------------------------------------------------------------------

def structural(schema):
    """A CRD's openAPIV3Schema as JSON Schema, as strict as the API server's strict field
    validation: an object with `properties` takes no other field (unless it preserves
    unknown fields), where plain JSON Schema would let a misspelt field through."""
    if isinstance(schema, list):
        return [structural(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: structural(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") or key in ("anyOf", "allOf", "oneOf"):
            out[key] = structural(value)
        else:
            out[key] = value
    if "properties" in schema and "additionalProperties" not in schema \
            and not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="session")
def crd_schemas() -> dict[str, dict]:
    schemas = {}
    for kind, file in (("RayService", "ray.io_rayservices.yaml"), ("RayCluster", "ray.io_rayclusters.yaml")):
        path = KUBERAY_CRDS / file
        if not path.exists():
            pytest.fail(f"The KubeRay CRD {path} is missing: set KUBERAY_CRD_DIR to a folder with the "
                        "CRDs of the KubeRay release you run (kuberay-operator Helm chart, crds/).")
        crd = yaml.safe_load(path.read_text())
        (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
        schemas[kind] = structural(version["schema"]["openAPIV3Schema"])
    return schemas


def test_the_ray_cluster_passes_the_raycluster_crd(rendered, crd_schemas):
    for overlay in OVERLAYS:
        service = named(rendered[overlay], "RayService", "orderflow")
        cluster = {"apiVersion": "ray.io/v1", "kind": "RayCluster",
                   "metadata": {"name": "orderflow"}, "spec": service["spec"]["rayClusterConfig"]}
        jsonschema.validate(cluster, crd_schemas["RayCluster"])


@pytest.mark.parametrize("change", [
    lambda spec: spec["rayClusterConfig"].update(enableInTreeAutoScaling=True),  # misspelt
    lambda spec: spec["rayClusterConfig"]["workerGroupSpecs"][0].update(maxReplicas="eight"),
    lambda spec: spec.update(serveConfigV2={"applications": []}),  # must be a string
])
def test_the_crd_check_refuses_what_kuberay_would(rendered, crd_schemas, change):
    service = copy.deepcopy(named(rendered["prod"], "RayService", "orderflow"))
    change(service["spec"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(service, crd_schemas["RayService"])


def test_the_rayservice_has_autoscaling_probes_and_a_zero_downtime_upgrade(rendered):
    spec = named(rendered["prod"], "RayService", "orderflow")["spec"]
    assert spec["upgradeStrategy"] == {"type": "NewCluster"}
    cluster = spec["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["rayVersion"] == ray.__version__  # the pinned Ray the image installs
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        (container,) = group["template"]["spec"]["containers"]
        assert container["readinessProbe"] and container["livenessProbe"]
        assert container["resources"]["requests"] and container["resources"]["limits"]


def serve_config_v2(rendered_objects) -> dict:
    return yaml.safe_load(named(rendered_objects, "RayService", "orderflow")["spec"]["serveConfigV2"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_serve_config_v2_parses_with_rays_own_schema(rendered, overlay):
    config = ServeDeploySchema.model_validate(serve_config_v2(rendered[overlay]))
    assert {app.name for app in config.applications} == {"orders", "auth", "notification", "analytics"}
    for app in config.applications:
        for deployment in app.deployments:
            assert deployment.autoscaling_config, (app.name, deployment.name)


def test_serve_config_v2_holds_exactly_the_applications_of_serve_config_yaml(rendered):
    local = yaml.safe_load(kuberay.SERVE_CONFIG.read_text())
    on_kubernetes = serve_config_v2(rendered["prod"])
    assert on_kubernetes == kuberay.cluster_serve_config()
    assert on_kubernetes["applications"] == kuberay.cluster_serve_config()["applications"]
    assert [a["name"] for a in on_kubernetes["applications"]] == [a["name"] for a in local["applications"]]
    assert on_kubernetes["http_options"] == local["http_options"] | {"host": "0.0.0.0"}


def test_the_committed_rayservice_is_generated_from_serve_config_yaml(capsys):
    assert kuberay.main(["--check"]) == 0, capsys.readouterr().err


def test_a_rayservice_that_differs_is_found_and_rewritten():
    current = kuberay.RAYSERVICE.read_text()
    stale = current.replace("max_replicas: 4", "max_replicas: 9", 1)
    assert stale != current
    assert kuberay.with_serve_config(stale, kuberay.serve_config_text()) == current


def test_only_what_differs_on_a_cluster_is_changed(tmp_path):
    local = yaml.safe_load(kuberay.SERVE_CONFIG.read_text())
    local["applications"][0]["runtime_env"] = {"env_vars": {"ORDERS_RELAY_POLL_S": "0.1"}, "pip": ["x"]}
    local["applications"][1]["runtime_env"] = {"env_vars": {"AUTH_BCRYPT_ROUNDS": "4"}, "working_dir": "."}
    source = tmp_path / "serve_config.yaml"
    source.write_text(yaml.safe_dump(local))
    cluster = kuberay.cluster_serve_config(source)
    assert cluster["http_options"]["host"] == "0.0.0.0"
    assert cluster["applications"][0]["runtime_env"] == {"pip": ["x"]}
    assert "runtime_env" not in cluster["applications"][1]
    strip = [{k: v for k, v in app.items() if k != "runtime_env"} for app in local["applications"]]
    assert [{k: v for k, v in app.items() if k != "runtime_env"} for app in cluster["applications"]] == strip


# --- settings -------------------------------------------------------------------------------------

def test_every_setting_is_in_the_config_map_or_the_secret():
    config, secret = dotenv_keys(CONFIG_ENV), set(dev_secrets.secret_values()) | {"AUTH_SIGNING_KEY"}
    documented_unset = {"AUTH_SIGNING_KEY_FILE", "AUTH_PREVIOUS_PUBLIC_KEY_FILE", "AUTH_SMTP_USERNAME", "AUTH_SMTP_PASSWORD",
                        "NOTIFY_WEBHOOK_SECRET_FILE"}
    assert all(name in CONFIG_ENV.read_text() for name in documented_unset)
    assert not config & secret
    assert service_settings() - config - secret - documented_unset == set()
    containers_own = {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS"}
    assert (config | secret) - service_settings() == containers_own  # no stale or misspelt name


def test_the_services_accept_the_config_map_and_the_secret(monkeypatch, k8s_copy):
    """Every value the Ray pods get (ConfigMap + the dev Secret, as envFrom gives them)
    passes the services' own settings validation, and the signing key loads."""
    environment = dotenv_values(CONFIG_ENV) | dotenv_values(k8s_copy / "overlays" / "dev" / "secrets.env")
    environment["AUTH_SIGNING_KEY"] = (k8s_copy / "overlays" / "dev" / dev_secrets.SIGNING_KEY_FILE).read_text()
    assert_services_accept(monkeypatch, environment)
