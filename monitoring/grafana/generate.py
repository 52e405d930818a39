"""Writes the dashboards Grafana's provisioning loads (`make dashboards`):

- dashboards/orderflow/orderflow.json: the Orderflow dashboard (orderflow_dashboard.py);
- dashboards/ray/*.json: Ray's own Core, Serve and Serve deployment dashboards, made by the
  installed Ray's generator, the same function Ray's dashboard runs to write them into
  <ray temp dir>/session_latest/metrics/grafana/dashboards/ at `ray start`.

`python -m monitoring.grafana.generate --check` writes nothing and exits 1 naming the files
that differ from what would be written (e.g. after a Ray upgrade)."""

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from unittest import mock

from monitoring.grafana import orderflow_dashboard

DASHBOARDS = Path(__file__).parent / "dashboards"
# Ray's dashboard -> the name Ray gives its file. Ray's Data, Train and LLM dashboards are left
# out: Orderflow runs none of those.
RAY_DASHBOARDS = {
    "default": "default_grafana_dashboard.json",
    "serve": "serve_grafana_dashboard.json",
    "serve_deployment": "serve_deployment_grafana_dashboard.json",
}


def ray_dashboard(name: str) -> str:
    """Ray's dashboard as Ray writes it, without the RAY_GRAFANA_* overrides of this shell."""
    from ray.dashboard.modules.metrics import grafana_dashboard_factory

    generate: Callable[[], tuple[str, str]] = getattr(grafana_dashboard_factory, f"generate_{name}_grafana_dashboard")
    clean = {key: value for key, value in os.environ.items() if not key.startswith("RAY_GRAFANA_")}
    with mock.patch.dict(os.environ, clean, clear=True):
        content, _uid = generate()
    return json.dumps(json.loads(content), indent=2, sort_keys=True) + "\n"


def expected() -> dict[Path, str]:
    """Every generated file and the text it should have."""
    files = {DASHBOARDS / "orderflow" / "orderflow.json": orderflow_dashboard.to_json()}
    for name, file in RAY_DASHBOARDS.items():
        files[DASHBOARDS / "ray" / file] = ray_dashboard(name)
    return files


def stale() -> list[Path]:
    """The generated files that are missing or differ from what the code makes."""
    return [path for path, text in expected().items() if not path.is_file() or path.read_text() != text]


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check"]:
        differ = stale()
        for path in differ:
            print(f"{path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path} is not current: "
                  "run `make dashboards`", file=sys.stderr)
        return 1 if differ else 0
    for path, text in expected().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
