"""The PromQL queries of the committed dashboards and the metric names they read, so a test
can hold them against the names a live Prometheus has scraped:

    missing_metrics(dashboards(), scraped_names)  ->  {"orderflow/orderflow.json: Outbox": {"..."}, ...}

The names come from the expressions by a small lexer, not a full PromQL parser: string
literals, label matchers, range/subquery brackets, Grafana's variables and the label lists of
by/without/on/ignoring/group_* are removed, and what is left that is not a function, an
operator or a keyword is a metric name."""

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

DASHBOARDS = Path(__file__).parent / "dashboards"
# The dashboards whose every metric must be in a live scrape. Ray's own dashboards also
# show metrics that exist only on some clusters (GPUs, object spilling, gRPC...).
STRICT = ("orderflow/orderflow.json",)

KEYWORDS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
}
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z]+")
_NAME = re.compile(r"(?<![\w.:])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (`{__name__="..."}` selectors included)."""
    names = set(re.findall(r'__name__\s*=\s*"([A-Za-z_:][A-Za-z0-9_:]*)"', expr))
    text = _VARIABLE.sub(" ", _STRING.sub('""', expr))
    text = _LABEL_LIST.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    for name, call in _NAME.findall(text):
        if not call and name not in KEYWORDS and not re.fullmatch(r"[0-9].*|[eE][0-9]+", name):
            names.add(name)
    return names


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
