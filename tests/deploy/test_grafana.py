"""monitoring/grafana: the committed dashboards are what their code makes (the Orderflow
dashboard from grafana-foundation-sdk, Ray's from the installed Ray's generator), every
dashboard is a Grafana dashboard whose queries Prometheus' own parser accepts, the
provisioning finds them where Compose and Kubernetes put them, and the metric-name check the
live test uses finds what a scrape lacks."""

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from actors.common.metrics import CATALOG
from deployments.stack import ROOT, free_port
from monitoring.grafana import generate, orderflow_dashboard, queries
from tests.deploy.support import of_kind, tool
from tests.e2e import prometheus

GRAFANA = ROOT / "monitoring" / "grafana"
ALL = sorted(str(path.relative_to(queries.DASHBOARDS)) for path in queries.DASHBOARDS.rglob("*.json"))
# What the issue asks the Orderflow dashboard to show, by its panels' titles.
ORDERFLOW_PANELS = {
    "Orders per minute", "Revenue per minute by currency", "Status funnel", "Notification lag (p95)", "Outbox",
    "Events consumed, retried, dead-lettered", "Dead-letter queue and agents", "Logins per minute",
    "Replicas per application",
}
# Grafana's variables, as Grafana would fill them in, so promtool can parse the queries.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s", "$interval": "15s"}


def test_the_committed_dashboards_are_what_the_code_makes():
    assert generate.stale() == [], "run `make dashboards` and commit monitoring/grafana/dashboards"
    assert set(ALL) == {"orderflow/orderflow.json"} | {f"ray/{file}" for file in generate.RAY_DASHBOARDS.values()}


def test_a_dashboard_that_differs_is_found(tmp_path, monkeypatch):
    copy = tmp_path / "dashboards"
    shutil.copytree(queries.DASHBOARDS, copy)
    monkeypatch.setattr(generate, "DASHBOARDS", copy)
    edited = copy / "ray" / "serve_grafana_dashboard.json"
    edited.write_text(edited.read_text().replace('"Serve Dashboard"', '"Serve"'))
    (copy / "orderflow" / "orderflow.json").unlink()
    assert sorted(generate.stale()) == [copy / "orderflow" / "orderflow.json", edited]
    assert generate.main(["generate", "--check"]) == 1
    assert generate.main(["generate"]) == 0 and generate.stale() == []


@pytest.mark.parametrize("file", ALL)
def test_every_dashboard_is_a_grafana_dashboard_on_the_prometheus_variable(file):
    model = json.loads((queries.DASHBOARDS / file).read_text())
    assert model["uid"] and model["title"] and model["schemaVersion"] >= 27
    (variable,) = [v for v in model["templating"]["list"] if v["type"] == "datasource"]
    assert (variable["name"], variable["query"]) == ("datasource", "prometheus")
    panels = list(queries.panels(model))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels:
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24 and position["h"] > 0, panel["title"]
        for target in panel.get("targets", []):
            source = target.get("datasource", panel.get("datasource"))
            assert source in ("${datasource}", {"type": "prometheus", "uid": "${datasource}"}), panel["title"]
    assert queries.panel_queries(model)


def test_the_orderflow_dashboard_shows_what_the_issue_asks():
    model = json.loads(orderflow_dashboard.to_json())
    assert model["uid"] == "orderflow"
    assert ORDERFLOW_PANELS <= set(queries.panel_queries(model))
    rows = [panel["title"] for panel in model["panels"] if panel["type"] == "row"]
    assert rows == ["Orders", "Events and notifications", "Logins", "Serve"]
    layout = [(p["gridPos"]["x"], p["gridPos"]["y"], p["gridPos"]["w"], p["gridPos"]["h"]) for p in model["panels"]]
    cells = [(x + i, y + j) for x, y, w, h in layout for i in range(w) for j in range(h)]
    assert len(cells) == len(set(cells)), "panels overlap"


def test_every_query_parses_with_prometheus_own_parser(tmp_path):
    """Each expression (Grafana's variables filled in) as a recording rule: `promtool check
    rules` parses it with Prometheus' PromQL parser."""
    rules = []
    for file in ALL:
        model = json.loads((queries.DASHBOARDS / file).read_text())
        for title, exprs in queries.panel_queries(model).items():
            for expr in exprs:
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                rules.append({"record": f"dashboard:query_{len(rules)}", "expr": expr})
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    promtool = tool("promtool", "deployments/system-packages.sh test installs it (Debian prometheus)")
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_a_query_that_does_not_parse_is_refused(tmp_path):
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": [
        {"record": "dashboard:query_0", "expr": "sum by (currency) (rate(orderflow_orders_created_total[1m])"}]}]}))
    promtool = tool("promtool", "deployments/system-packages.sh test installs it (Debian prometheus)")
    assert subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, timeout=60).returncode != 0


# --- the metric-name check of the live test ---------------------------------------------------

@pytest.mark.parametrize(("expr", "names"), [
    ("sum by (currency) (rate(orderflow_orders_created_total[$__rate_interval])) * 60",
     {"orderflow_orders_created_total"}),
    ('histogram_quantile(0.99, sum by (le, service) (rate(http_seconds_bucket{status=~"5..", x="a{b}"}[5m])))',
     {"http_seconds_bucket"}),
    ("max(outbox_backlog) / on (instance) group_left (job) up offset 1h > bool 0",
     {"outbox_backlog", "up"}),
    ('sum(rate(ray_tasks{State=~"$State"}[$__rate_interval])) or vector(0)', {"ray_tasks"}),
    ("count without (replica) (ray_serve_deployment_replica_healthy{application=~\"$Application\"} == 1) "
     "unless absent(nan_metric) and 1e3 < inf", {"ray_serve_deployment_replica_healthy", "nan_metric"}),
    ("rate(a:b_total[5m:30s])", {"a:b_total"}),
])
def test_metric_names_are_read_from_promql(expr, names):
    assert queries.metric_names(expr) == names


def test_every_orderflow_metric_is_declared_or_serves_own():
    """Before any scrape: each name an Orderflow panel reads is a metric of the catalog as Ray
    exports it (a histogram by its series) or one of Serve's."""
    declared = set()
    for metric in CATALOG.values():
        suffixes = ("_bucket", "_sum", "_count") if metric.kind == "histogram" else ("",)
        declared |= {metric.exported + suffix for suffix in suffixes}
    (model,) = queries.dashboards().values()
    for title, exprs in queries.panel_queries(model).items():
        for name in set().union(*map(queries.metric_names, exprs)):
            assert name in declared or name.startswith("ray_serve_"), (title, name)


def test_missing_metrics_names_each_panel_with_what_the_scrape_lacks():
    models = queries.dashboards()
    every = set().union(*(queries.metric_names(e) for es in queries.panel_queries(models["orderflow/orderflow.json"])
                          .values() for e in es))
    placed = "ray_orderflow_orders_placed_total"
    assert "ray_serve_deployment_replica_healthy" in every and placed in every
    assert queries.missing_metrics(models, every | {"up"}) == {}
    missing = queries.missing_metrics(models, every - {placed})
    assert missing == {"orderflow/orderflow.json: Orders per minute": {placed},
                       "orderflow/orderflow.json: Status funnel": {placed}}


# --- provisioning in Compose and Kubernetes ---------------------------------------------------

def provisioning(kind: str) -> dict:
    (path,) = (GRAFANA / "provisioning" / kind).glob("*.yaml")
    return yaml.safe_load(path.read_text())


def test_the_datasources_are_prometheus_and_loki_by_service_name():
    sources = {source["uid"]: source for source in provisioning("datasources")["datasources"]}
    assert sources["prometheus"]["type"] == "prometheus" and sources["prometheus"]["isDefault"]
    assert sources["prometheus"]["url"] == "http://prometheus:9090"
    assert (sources["loki"]["name"], sources["loki"]["type"], sources["loki"]["url"]) == ("Loki", "loki",
                                                                                           "http://loki:3100")


def test_compose_mounts_the_provisioning_and_every_provider_finds_its_dashboards():
    grafana = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["grafana"]
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in grafana["volumes"] if volume.startswith("./"))
    assert mounts == {"./monitoring/grafana/provisioning": "/etc/grafana/provisioning",
                      "./monitoring/grafana/dashboards": "/etc/grafana/dashboards"}
    for provider in provisioning("dashboards")["providers"]:
        folder = Path(provider["options"]["path"]).relative_to("/etc/grafana/dashboards")
        assert list((queries.DASHBOARDS / folder).glob("*.json")), provider["name"]
    assert grafana["ports"] == ["127.0.0.1:3000:3000"]


def test_kubernetes_gets_every_dashboard_and_the_provisioning_as_config_maps(rendered):
    for overlay, objects in rendered.items():
        maps = {m["metadata"]["name"].rsplit("-", 1)[0]: m for m in of_kind(objects, "ConfigMap")}
        dashboards = {file: text for name, m in maps.items() if name.startswith("grafana-dashboards-")
                      for file, text in m["data"].items()}
        assert sorted(dashboards) == sorted(Path(file).name for file in ALL), overlay
        for file in ALL:
            assert json.loads(dashboards[Path(file).name]) == json.loads((queries.DASHBOARDS / file).read_text())
        assert all(m["metadata"]["labels"]["grafana_dashboard"] == "1" for name, m in maps.items()
                   if name.startswith("grafana-dashboards-"))
        sources = maps["grafana-datasources"]
        assert yaml.safe_load(sources["data"]["orderflow.yaml"]) == provisioning("datasources"), overlay
        assert "grafana_datasource" not in sources["metadata"]["labels"]  # kube-prometheus-stack has its own
        providers = maps["grafana-dashboard-providers"]["data"]["orderflow.yaml"]
        assert yaml.safe_load(providers) == provisioning("dashboards"), overlay


# --- the screenshot's renderer ------------------------------------------------------------------

# A value for each label the Orderflow panels group by or legend with.
LABELS = {"currency": "PLN", "to_status": "paid", "stage": "stored", "kind": "password", "outcome": "success",
          "reason": "logout", "application": "orders", "service": "orders", "status": "200"}


def backfill(path: Path, names: set[str], now: int) -> str:
    """Half an hour of made-up samples of `names` every 15 s, in OpenMetrics text (what
    `promtool tsdb create-blocks-from openmetrics` takes): counters (_total, _sum, _count)
    rising, histogram buckets rising per `le`, gauges level."""
    labels = ",".join(f'{key}="{value}"' for key, value in LABELS.items())
    lines = []
    for name in sorted(names):
        lines.append(f"# TYPE {name} unknown")
        for step in range(121):
            at = now - 1800 + 15 * step
            if name.endswith("_bucket"):
                lines += [f'{name}{{{labels},le="{le}"}} {step * share} {at}'
                          for le, share in (("0.1", 1), ("1", 3), ("+Inf", 4))]
            else:
                value = 2 * step if name.endswith(("_total", "_sum", "_count")) else 3
                lines.append(f"{name}{{{labels}}} {value} {at}")
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_the_renderer_draws_every_panel_from_prometheus(tmp_path):
    """Debian's Prometheus on made-up samples of every metric the Orderflow dashboard reads
    (Grafana's own queries, run through Prometheus' API): every panel shows data, and a
    PNG of the dashboard's size comes out."""
    from monitoring.grafana import render

    (model,) = queries.dashboards().values()
    names = set().union(*(queries.metric_names(e) for es in queries.panel_queries(model).values() for e in es))
    now = int(time.time())
    promtool = tool("promtool", "deployments/system-packages.sh test installs it (Debian prometheus)")
    data = tmp_path / "data"
    result = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics",
                             backfill(tmp_path / "samples.txt", names, now), str(data)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "dashboard.png"
    with prometheus.running({"global": {"scrape_interval": "15s"}}, free_port(), tmp_path, data) as url:
        shown = render.render(url, 30, out, end=now)
    assert {title for title, count in shown.items() if not count} == set()
    assert set(shown) == set(queries.panel_queries(model))
    assert shown["Status funnel"] == 2  # new (placed) and paid
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
