"""The Orderflow dashboard, built as code with grafana-foundation-sdk. `make dashboards` writes
it to dashboards/orderflow/orderflow.json (committed; tests/deploy/test_grafana.py checks that
the file is what this code makes), which Grafana's provisioning loads.

Every panel queries the Prometheus of the `datasource` variable. The services' metric names
come from actors/common/metrics.py (as Ray's agent exports them: `Metric.exported`), so a
renamed metric changes the dashboard at the next `make dashboards`; Serve's own are Ray's."""

import json

from grafana_foundation_sdk.builders import bargauge, common, dashboard, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BarGaugeDisplayMode,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
    VizOrientation,
)
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, DataSourceRef

from actors.common import metrics as m

UID = "orderflow"
PROMETHEUS = DataSourceRef(type_val="prometheus", uid="${datasource}")


def query(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend or "__auto").ref_id(ref).datasource(PROMETHEUS)


def queries(*pairs: tuple[str, str]) -> list[prometheus.Dataquery]:
    """(expr, legend) pairs as queries A, B, C..."""
    return [query(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(pairs)]


def graph(title: str, description: str, unit: str, *pairs: tuple[str, str], stacked: bool = False,
          width: int = 12) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(PROMETHEUS)
        .targets(queries(*pairs))
        .unit(unit)
        .min(0)
        .height(8)
        .span(width)
        .fill_opacity(15 if stacked else 5)
        .legend(common.VizLegendOptions().display_mode(LegendDisplayMode.LIST).placement(LegendPlacement.BOTTOM)
                .show_legend(True))
    )
    if stacked:
        panel = panel.stacking(common.StackingConfig().mode(StackingMode.NORMAL))
    return panel


def status_funnel() -> bargauge.Panel:
    """Orders that reached each status over the dashboard's time range: placed ones count as
    `new`, every other status by the changes into it."""
    placed = query(f"sum(increase({m.ORDERS_PLACED.exported}[$__range]))", "new", "A")
    reached = query(
        f"sum by (to_status) (increase({m.STATUS_CHANGES.exported}[$__range]))", "{{to_status}}", "B"
    )
    return (
        bargauge.Panel()
        .title("Status funnel")
        .description("Orders placed (new) and status changes into each status over the time range shown.")
        .datasource(PROMETHEUS)
        .targets([placed.instant(), reached.instant()])
        .unit("short")
        .decimals(0)
        .min(0)
        .orientation(VizOrientation.HORIZONTAL)
        .display_mode(BarGaugeDisplayMode.GRADIENT)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .height(8)
        .span(12)
    )


def per_minute(metric: m.Metric, by: str = "", series: str = "") -> str:
    """A counter's increase per minute, summed over the replicas (by the labels in `by`)."""
    grouping = f" by ({by}) " if by else ""
    return f"sum{grouping}(rate({metric.exported}{series}[$__rate_interval])) * 60"


def quantile(q: float, metric: m.Metric, by: str) -> str:
    return (f"histogram_quantile({q}, sum by (le, {by}) "
            f"(rate({metric.exported}_bucket[$__rate_interval])))")


def build() -> dashboard.Dashboard:
    return (
        dashboard.Dashboard("Orderflow")
        .uid(UID)
        .description("Orders, revenue, the status funnel, events and notifications, logins and Serve replicas.")
        .tags(["orderflow"])
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(dashboard.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        .with_row(dashboard.Row("Orders"))
        .with_panel(graph(
            "Orders per minute", "Orders placed per minute, by currency.", "short",
            (per_minute(m.ORDERS_PLACED, "currency"), "{{currency}}"),
            stacked=True,
        ))
        .with_panel(graph(
            "Revenue per minute by currency", "Total value of the orders placed per minute, in each currency.",
            "short",
            (per_minute(m.ORDER_VALUE, "currency", "_sum"), "{{currency}}"),
        ))
        .with_panel(status_funnel())
        .with_panel(graph(
            "Status changes per minute", "Order status changes per minute, by the status reached.", "short",
            (per_minute(m.STATUS_CHANGES, "to_status"), "{{to_status}}"),
            stacked=True,
        ))
        .with_row(dashboard.Row("Events and notifications"))
        .with_panel(graph(
            "Notification lag (p95)",
            "stored: from the order event's time to its notification stored; pushed: from stored to sent to an agent.",
            "s",
            (quantile(0.95, m.NOTIFICATION_LAG, "stage"), "p95 {{stage}}"),
            (quantile(0.5, m.NOTIFICATION_LAG, "stage"), "p50 {{stage}}"),
        ))
        .with_panel(graph(
            "Outbox", "Order events committed but not yet confirmed by RabbitMQ, the age of the oldest (s), "
            "and the relay's failed rounds per minute.", "short",
            (f"max({m.OUTBOX_BACKLOG.exported})", "backlog"),
            (f"max({m.OUTBOX_OLDEST_AGE.exported})", "oldest (s)"),
            (per_minute(m.PUBLISH_FAILURES), "publish failures / min"),
        ))
        .with_panel(graph(
            "Events consumed, retried, dead-lettered", "Order events the notification service took, per minute.",
            "short",
            (per_minute(m.EVENTS_CONSUMED), "consumed"),
            (per_minute(m.EVENTS_RETRIED), "retried"),
            (per_minute(m.EVENTS_DEAD_LETTERED), "dead-lettered"),
        ))
        .with_panel(graph(
            "Dead-letter queue and agents", "Messages waiting in the dead-letter queue; desktop agents connected.",
            "short",
            (f"max({m.DLQ_DEPTH.exported})", "DLQ depth"),
            (f"sum({m.AGENTS_CONNECTED.exported})", "agents connected"),
        ))
        .with_row(dashboard.Row("Logins"))
        .with_panel(graph(
            "Logins per minute", "Login attempts per minute by kind (password, order) and outcome.", "short",
            (per_minute(m.LOGINS, "kind, outcome"), "{{kind}} {{outcome}}"),
            stacked=True,
        ))
        .with_panel(graph(
            "Lockouts and revoked sessions", "Accounts locked out and sessions ended by the server, per minute.",
            "short",
            (per_minute(m.LOCKOUTS), "lockouts"),
            (per_minute(m.SESSIONS_REVOKED, "reason"), "revoked: {{reason}}"),
        ))
        .with_row(dashboard.Row("Serve"))
        .with_panel(graph(
            "Replicas per application", "Healthy Serve replicas of each application (stacked: the top is all).",
            "short",
            ("sum by (application) (ray_serve_deployment_replica_healthy)", "{{application}}"),
            stacked=True, width=8,
        ))
        .with_panel(graph(
            "Requests per second", "HTTP requests the services answered, by service; 5xx apart.", "reqps",
            (f'sum by (service) (rate({m.HTTP_REQUESTS.exported}{{status!~"5.."}}[$__rate_interval]))',
             "{{service}}"),
            (f'sum by (service) (rate({m.HTTP_REQUESTS.exported}{{status=~"5.."}}[$__rate_interval]))',
             "{{service}} 5xx"),
            width=8,
        ))
        .with_panel(graph(
            "Latency (p99)", "99th percentile of the time to answer, by service.", "s",
            (quantile(0.99, m.HTTP_LATENCY, "service"), "{{service}}"),
            width=8,
        ))
    )


def to_json() -> str:
    """The dashboard as Grafana's JSON model, as committed in dashboards/orderflow/orderflow.json."""
    model = json.loads(json.dumps(build().build(), cls=JSONEncoder))
    for number, panel in enumerate(model["panels"], start=1):
        panel["id"] = number  # Grafana needs each panel's id unique; the builder leaves them unset
    return json.dumps(model, indent=2, sort_keys=True) + "\n"
