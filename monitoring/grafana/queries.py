"""The PromQL queries of the committed dashboards and the metric names they read, so a test
can hold them against the names a live Prometheus has scraped:

    missing_metrics(dashboards(), scraped_names)  ->  {"orderflow/orderflow.json: Outbox": {"..."}, ...}

The names come from each expression by the same lexer the alert rules' checks use
(monitoring.alerts.metric_names)."""

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from monitoring.alerts import metric_names

DASHBOARDS = Path(__file__).parent / "dashboards"
# The dashboards whose every metric must be in a live scrape. Ray's own dashboards also
# show metrics that exist only on some clusters (GPUs, object spilling, gRPC...).
STRICT = ("orderflow/orderflow.json",)


def panels(model: dict) -> Iterator[dict]:
    """Every panel of a dashboard's JSON model, those inside collapsed rows included."""
    for panel in model.get("panels", []):
        yield panel
        yield from panels(panel)


def panel_queries(model: dict) -> dict[str, list[str]]:
    """Panel title -> the PromQL expressions of its targets (panels without one left out)."""
    found = {}
    for panel in panels(model):
        exprs = [target["expr"] for target in panel.get("targets", []) if target.get("expr")]
        if exprs:
            found.setdefault(panel.get("title") or f"panel {panel.get('id')}", []).extend(exprs)
    return found


def dashboards(names: Iterable[str] = STRICT) -> dict[str, dict]:
    """File name -> JSON model of the committed dashboards named."""
    return {name: json.loads((DASHBOARDS / name).read_text()) for name in names}


def missing_metrics(models: dict[str, dict], scraped: Iterable[str]) -> dict[str, set[str]]:
    """"<dashboard file>: <panel title>" -> the metric names its queries read that are not in
    `scraped` (e.g. the values of Prometheus' /api/v1/label/__name__/values); only panels
    with something missing are listed, so {} means every query's metrics exist."""
    scraped = set(scraped)
    missing = {}
    for file, model in models.items():
        for title, exprs in panel_queries(model).items():
            absent = set().union(*(metric_names(expr) for expr in exprs)) - scraped
            if absent:
                missing[f"{file}: {title}"] = absent
    return missing
