"""monitoring/: Prometheus' configs pass `promtool check config`, the alert rules `promtool
check rules` and their unit tests `promtool test rules` (every alert firing and not firing);
every alert is complete (severity, summary, description, a runbook section) and reads only
metrics the services declare or Ray and Serve export; the Kubernetes component (PodMonitor,
PrometheusRule, NetworkPolicy) renders with every overlay and has the shape the Prometheus
Operator's CRDs require (checked against a strict schema of the fields used: the CRDs are
not available offline)."""

import re
import shutil

import jsonschema
import kubernetes_validate
import pytest
import yaml

from actors.common.metrics import CATALOG
from deployments.stack import ROOT
from monitoring.alerts import PROMETHEUS_RULE, RULES_DIR, alert_rules, metric_names, rendered_prometheus_rule
from tests.deploy.support import OVERLAYS, named, of_kind, run, tool

MONITORING = ROOT / "monitoring"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
RULE_TESTS = sorted((RULES_DIR / "tests").glob("*.yml"))


def promtool() -> str:
    return tool("promtool", "deployments/system-packages.sh test installs it (Debian prometheus)")


# --- Prometheus configs and rules ---------------------------------------------------------------

def test_the_local_config_passes_promtool_and_loads_the_rules(tmp_path):
    # The file_sd target (a link `orderflow run` makes) need not exist for the check.
    result = run([promtool(), "check", "config", str(MONITORING / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(list(RULES_DIR.glob('*.yml')))} rule files found" in result.stdout


def test_the_compose_config_passes_promtool(tmp_path):
    # Compose mounts monitoring/rules at /etc/prometheus/rules: checked from a copy that
    # reads them where they are here.
    config = yaml.safe_load((MONITORING / "compose" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    config["rule_files"] = [str(RULES_DIR / "*.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = run([promtool(), "check", "config", str(tmp_path / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_promtool():
    result = run([promtool(), "check", "rules", *map(str, sorted(RULES_DIR.glob("*.yml")))])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_the_rules_unit_tests_pass():
    result = run([promtool(), "test", "rules", *map(str, RULE_TESTS)], cwd=RULES_DIR / "tests")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_broken_rule_fails_its_unit_test(tmp_path):
    """The unit tests can fail: the same tests against rules with one threshold changed."""
    shutil.copytree(RULES_DIR, tmp_path / "rules")
    rules = tmp_path / "rules" / "orderflow.yml"
    rules.write_text(rules.read_text().replace("max(ray_orderflow_dlq_depth) > 0", "max(ray_orderflow_dlq_depth) > 5"))
    result = run([promtool(), "test", "rules", *(str(tmp_path / "rules" / "tests" / t.name) for t in RULE_TESTS)])
    assert result.returncode != 0
    assert "OrderflowDeadLetters" in result.stdout + result.stderr


def alerts_under_test() -> tuple[set[str], set[str]]:
    """The alerts some unit test expects to fire, and those some test expects not to."""
    firing, quiet = set(), set()
    for path in RULE_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    return firing, quiet


def test_every_alert_is_tested_firing_and_not_firing():
    names = {rule["alert"] for rule in alert_rules()}
    firing, quiet = alerts_under_test()
    assert names - firing == set(), "alerts no test sees firing"
    assert names - quiet == set(), "alerts no test sees quiet"
    assert (firing | quiet) - names == set(), "tests of alerts that do not exist"


def test_every_alert_says_how_bad_what_and_where_its_runbook_is():
    sections = {heading.lower() for heading in re.findall(r"^## (\w+)$", RUNBOOKS.read_text(), re.MULTILINE)}
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))
    for rule in alert_rules():
        assert re.fullmatch(r"Orderflow[A-Za-z0-9]+", rule["alert"])
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, rule["alert"]
        assert annotations["runbook_url"] == f"docs/runbooks.md#{rule['alert'].lower()}"
        assert rule["alert"].lower() in sections, f"no runbook section for {rule['alert']}"
    assert sections == {name.lower() for name in names}, "runbook sections without an alert"


# Metrics Ray and Serve export themselves (besides the services' ray_orderflow_*), and `up`.
RAY_METRICS = {"up", "ray_serve_deployment_replica_healthy", "ray_serve_autoscaling_desired_replicas",
               "ray_serve_autoscaling_target_replicas", "ray_serve_autoscaling_total_requests"}


def declared_series() -> set[str]:
    names = set()
    for metric in CATALOG.values():
        names.add(metric.exported)
        if metric.kind == "histogram":
            names |= {f"{metric.exported}_{part}" for part in ("bucket", "sum", "count")}
    return names


# What the servers' exporters export (monitoring/prometheus.yml's exporter jobs).
EXPORTER_METRICS = {"pg_up", "redis_up"}


def test_every_metric_the_rules_read_is_declared_or_ray_s_own():
    used = set().union(*(metric_names(rule["expr"]) for rule in alert_rules()))
    assert used - declared_series() - RAY_METRICS - EXPORTER_METRICS == set()
    assert EXPORTER_METRICS <= used
    assert RAY_METRICS <= used | {"up"}  # the list names no metric the rules do not read


def test_the_metric_name_parser():
    assert metric_names('sum by (service, le) (rate(a_bucket{x="y",z=~"5.."}[5m])) / b > 0.5') == {"a_bucket", "b"}
    assert metric_names('(c or on (s) label_replace(vector(0), "s", "v", "", "")) < 1 and time() - d > 3e2') \
        == {"c", "d"}


def test_the_readme_lists_every_alert():
    text = (ROOT / "README.md").read_text()
    chapter = text[text.index("## Monitoring and operations"):]
    listed = set(re.findall(r"^\| `(Orderflow\w+)`", chapter, re.MULTILINE))
    assert listed == {rule["alert"] for rule in alert_rules()}


# --- Kubernetes ------------------------------------------------------------------------------------

def test_the_prometheus_rule_is_generated_from_the_rules():
    assert PROMETHEUS_RULE.read_text() == rendered_prometheus_rule()


@pytest.fixture(scope="module")
def monitored(rendered_with) -> dict[str, list[dict]]:
    """Every overlay with the monitoring component added (`components: [../../monitoring]`,
    as README says), as `kubectl kustomize` renders it."""
    return rendered_with("monitoring")


STRING = {"type": "string"}
LABELS = {"type": "object", "additionalProperties": STRING}
METADATA = {"type": "object", "required": ["name", "namespace"], "additionalProperties": False,
            "properties": {"name": STRING, "namespace": STRING, "labels": LABELS}}
# The fields Orderflow uses, as the monitoring.coreos.com/v1 CRDs define them (strict: a
# misspelt field fails, as the API server's strict field validation would).
POD_MONITOR = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PodMonitor"}, "metadata": METADATA,
        "spec": {"type": "object", "required": ["selector", "podMetricsEndpoints"], "additionalProperties": False,
                 "properties": {
                     "selector": {"type": "object", "additionalProperties": False,
                                  "properties": {"matchLabels": LABELS}},
                     "podMetricsEndpoints": {"type": "array", "minItems": 1, "items": {
                         "type": "object", "required": ["port"], "additionalProperties": False,
                         "properties": {
                             "port": STRING, "path": STRING,
                             "interval": {"type": "string", "pattern": r"^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?)$"},
                             "relabelings": {"type": "array", "items": {
                                 "type": "object", "additionalProperties": False,
                                 "properties": {"sourceLabels": {"type": "array", "items": STRING},
                                                "targetLabel": STRING, "regex": STRING,
                                                "replacement": STRING, "action": STRING}}}}}}}}}}
DURATION = {"type": "string", "pattern": r"^(0|(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?)$"}
PROMETHEUS_RULE_SCHEMA = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PrometheusRule"},
        "metadata": METADATA,
        "spec": {"type": "object", "required": ["groups"], "additionalProperties": False, "properties": {
            "groups": {"type": "array", "items": {
                "type": "object", "required": ["name", "rules"], "additionalProperties": False,
                "properties": {"name": STRING, "interval": DURATION, "rules": {"type": "array", "items": {
                    "type": "object", "required": ["expr"], "additionalProperties": False,
                    "properties": {"alert": STRING, "record": STRING, "expr": STRING, "for": DURATION,
                                   "labels": LABELS, "annotations": LABELS}}}}}}}}}}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_monitoring_component_passes_its_schemas(monitored, overlay):
    objects = monitored[overlay]
    jsonschema.validate(named(objects, "PodMonitor", "orderflow-ray"), POD_MONITOR)
    jsonschema.validate(named(objects, "PrometheusRule", "orderflow"), PROMETHEUS_RULE_SCHEMA)
    kubernetes_validate.validate(named(objects, "NetworkPolicy", "ray-metrics-from-prometheus"),
                                 kubernetes_validate.latest_version(), strict=True)
    assert {o["metadata"]["namespace"] for o in objects if o["kind"] != "Namespace"} == {f"orderflow-{overlay}"}


def test_the_schema_refuses_a_misspelt_field(monitored):
    monitor = named(monitored["prod"], "PodMonitor", "orderflow-ray")
    broken = {**monitor, "spec": {**monitor["spec"], "podMetricEndpoints": monitor["spec"]["podMetricsEndpoints"]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, POD_MONITOR)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pod_monitor_scrapes_every_ray_node_s_metrics_agent(monitored, overlay):
    objects = monitored[overlay]
    monitor = named(objects, "PodMonitor", "orderflow-ray")
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    cluster = named(objects, "RayService", "orderflow")["spec"]["rayClusterConfig"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for group in groups:
        template = group["template"]
        assert monitor["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
        (container,) = template["spec"]["containers"]
        (port,) = [p for p in container["ports"] if p["name"] == endpoint["port"]]
        # KubeRay starts every node with --metrics-export-port=8080 unless rayStartParams says otherwise.
        assert int(group["rayStartParams"].get("metrics-export-port", 8080)) == port["containerPort"]
        (policy,) = [p for p in of_kind(objects, "NetworkPolicy") if p["metadata"]["name"] == "ray-metrics-from-prometheus"]
        assert [p["port"] for p in policy["spec"]["ingress"][0]["ports"]] == [port["containerPort"]]
    rule = named(objects, "PrometheusRule", "orderflow")
    assert [group["name"] for group in rule["spec"]["groups"]] == \
        [group["name"] for group in yaml.safe_load((RULES_DIR / "orderflow.yml").read_text())["groups"]]
