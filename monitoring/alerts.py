"""The alert rules of monitoring/rules/ as data: the rules, the metrics their expressions
read, and the same rules as a Prometheus Operator PrometheusRule for Kubernetes.

    python -m monitoring.alerts     rewrites k8s/monitoring/prometheusrule.yaml from the rules
"""

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "monitoring" / "rules"
PROMETHEUS_RULE = ROOT / "k8s" / "monitoring" / "prometheusrule.yaml"

_KEYWORDS = {"by", "on", "without", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset",
             "bool", "inf", "nan"}


def rule_groups() -> list[dict]:
    groups = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        groups.extend(yaml.safe_load(path.read_text())["groups"])
    return groups


def alert_rules() -> list[dict]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (a histogram's as its _bucket series)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        following = text[match.end():].lstrip()
        if match.group() in _KEYWORDS or following.startswith("(") or text[match.start() - 1:match.start()].isdigit():
            continue
        names.add(match.group())
    return names


def prometheus_rule() -> dict:
    """The rules as a PrometheusRule object (monitoring.coreos.com/v1), for a Prometheus that
    the Prometheus Operator runs; k8s/monitoring/ (a kustomize component) carries it."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "orderflow", "labels": {"app.kubernetes.io/part-of": "orderflow"}},
        "spec": {"groups": rule_groups()},
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line expressions as literal blocks, as in the rules file."""


_Dumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def rendered_prometheus_rule() -> str:
    header = ("# Generated from monitoring/rules/*.yml by `.venv/bin/python -m monitoring.alerts`;\n"
              "# do not edit: tests/deploy/test_monitoring.py checks that it is up to date.\n")
    return header + yaml.dump(prometheus_rule(), Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)


def main() -> int:
    PROMETHEUS_RULE.write_text(rendered_prometheus_rule())
    print(f"wrote {PROMETHEUS_RULE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
