"""The Orderflow dashboard drawn with matplotlib from a real Prometheus: every panel of
dashboards/orderflow/orderflow.json where its gridPos puts it, each query run through
Prometheus' HTTP API as Grafana would run it (/api/v1/query_range for a graph, /api/v1/query
over the whole range for the funnel). Grafana itself is not packaged where this project
installs from, so this is how the README's screenshot is made from live data:

    python -m monitoring.grafana.render --prometheus http://127.0.0.1:9090 --minutes 20 \\
        --out docs/screenshots/dashboard.png
"""

import argparse
import json
import math
import re
import time
from datetime import datetime
from pathlib import Path

import httpx
import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

from monitoring.grafana.queries import DASHBOARDS  # noqa: E402

# Grafana's dark theme and its classic palette.
BACKGROUND, PANEL, GRID, TEXT, MUTED = "#111217", "#181b1f", "#2c3235", "#ccccdc", "#8e8e9e"
PALETTE = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#705da0", "#37872d"]
UNITS = {"s": "s", "reqps": "req/s", "short": ""}
# Grafana's smallest query step: the data source's timeInterval (provisioning/datasources).
MIN_STEP_S = 15.0


def fill_variables(expr: str, minutes: int, rate_interval: str) -> str:
    return expr.replace("$__rate_interval", rate_interval).replace("$__range", f"{minutes}m")


def legend(template: str, labels: dict[str, str]) -> str:
    if template in ("", "__auto"):
        return ", ".join(f"{k}={v}" for k, v in labels.items() if k != "__name__") or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda match: labels.get(match.group(1), ""), template)


class Prometheus:
    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=30)

    def _get(self, path: str, **params) -> list[dict]:
        answer = self.client.get(path, params=params)
        answer.raise_for_status()
        body = answer.json()
        if body["status"] != "success":
            raise RuntimeError(f"{params.get('query')}: {body}")
        return body["data"]["result"]

    def range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        return self._get("/api/v1/query_range", query=expr, start=start, end=end, step=step)

    def instant(self, expr: str, at: float) -> list[dict]:
        return self._get("/api/v1/query", query=expr, time=at)


def no_data(ax) -> None:
    ax.text(0.5, 0.5, "No data", color=MUTED, ha="center", va="center", transform=ax.transAxes, fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])


def with_gaps(points: list[tuple[float, float]], step: float) -> list[tuple[float, float]]:
    """A NaN where a series has no sample for more than a step, so no line is drawn across
    the gap (Grafana does not connect null values either)."""
    spaced = points[:1]
    for previous, point in zip(points, points[1:]):
        if point[0] - previous[0] > 1.5 * step:
            spaced.append((previous[0] + step, math.nan))
        spaced.append(point)
    return spaced


def draw_graph(ax, panel: dict, prometheus: Prometheus, start: float, end: float, minutes: int, rate: str) -> int:
    """The panel's series as lines (stacked when the panel stacks them); how many."""
    step = max(MIN_STEP_S, (end - start) / 240)
    stacked = panel["fieldConfig"]["defaults"].get("custom", {}).get("stacking", {}).get("mode") == "normal"
    series = []
    for target in panel["targets"]:
        for result in prometheus.range(fill_variables(target["expr"], minutes, rate), start, end, step):
            points = [(float(t), float(v)) for t, v in result["values"] if not math.isnan(float(v))]
            if points:
                series.append((legend(target.get("legendFormat", ""), result["metric"]), points))
    if not series:
        no_data(ax)
        return 0
    series.sort(key=lambda s: s[0])
    if stacked:
        # Stack on a common time grid, as Grafana's "normal" stacking draws them.
        grid = sorted({t for _, points in series for t, _ in points})
        base = [0.0] * len(grid)
        for i, (name, points) in enumerate(series):
            values = dict(points)
            top = [b + values.get(t, 0.0) for b, t in zip(base, grid)]
            times = [datetime.fromtimestamp(t) for t in grid]
            color = PALETTE[i % len(PALETTE)]
            ax.fill_between(times, base, top, color=color, alpha=0.25, linewidth=0)
            ax.plot(times, top, color=color, linewidth=1.3, label=name)
            base = top
    else:
        for i, (name, points) in enumerate(series):
            color = PALETTE[i % len(PALETTE)]
            points = with_gaps(points, step)
            times = [datetime.fromtimestamp(t) for t, _ in points]
            values = [v for _, v in points]
            ax.plot(times, values, color=color, linewidth=1.3, label=name)
            ax.fill_between(times, 0, values, color=color, alpha=0.05, linewidth=0)
    ax.set_ylim(0, (ax.get_ylim()[1] or 1) * 1.25)  # room for the legend above the lines
    ax.set_xlim(datetime.fromtimestamp(start), datetime.fromtimestamp(end))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=6))
    unit = UNITS.get(panel["fieldConfig"]["defaults"].get("unit", ""), "")
    if unit:
        ax.set_ylabel(unit, color=MUTED, fontsize=7)
    ax.legend(loc="upper left", fontsize=6.5, frameon=False, labelcolor=TEXT, ncol=min(4, len(series)))
    return len(series)


def draw_bars(ax, panel: dict, prometheus: Prometheus, end: float, minutes: int, rate: str) -> int:
    """The panel's values over the whole range as horizontal bars, in the status machine's
    order; how many."""
    bars = []
    for target in panel["targets"]:
        for result in prometheus.instant(fill_variables(target["expr"], minutes, rate), end):
            bars.append((legend(target.get("legendFormat", ""), result["metric"]), float(result["value"][1])))
    order = ["new", "paid", "picking", "packed", "shipped", "delivered", "cancelled"]
    bars.sort(key=lambda bar: order.index(bar[0]) if bar[0] in order else len(order))
    if not bars:
        no_data(ax)
        return 0
    names = [name for name, _ in bars][::-1]
    values = [value for _, value in bars][::-1]
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(bars))][::-1]
    ax.barh(names, values, color=colors, alpha=0.85, height=0.7)
    for y, value in enumerate(values):
        ax.text(value, y, f" {value:.0f}", va="center", color=TEXT, fontsize=8)
    ax.set_xlim(0, max(values) * 1.15 or 1)
    ax.tick_params(axis="y", labelsize=8)
    return len(bars)


def render(prometheus_url: str, minutes: int, out: Path, rate: str = "1m", end: float | None = None) -> dict[str, int]:
    """Draws the dashboard over the `minutes` up to `end` (now) into `out`; returns how many
    series (or bars) each panel showed."""
    model = json.loads((DASHBOARDS / "orderflow" / "orderflow.json").read_text())
    prometheus = Prometheus(prometheus_url)
    end = end or time.time()
    start = end - minutes * 60
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in model["panels"])
    unit = 0.42  # inches per grid row; 24 columns over 20 inches
    figure = plt.figure(figsize=(20, rows * unit + 0.8), facecolor=BACKGROUND)
    height = rows * unit + 0.8
    figure.text(0.01, 1 - 0.35 / height, f"{model['title']}    last {minutes} minutes, "
                f"{datetime.fromtimestamp(start):%Y-%m-%d %H:%M} to {datetime.fromtimestamp(end):%H:%M}",
                color=TEXT, fontsize=13, va="center")
    top = 0.7 / height
    shown = {}
    for panel in model["panels"]:
        pos = panel["gridPos"]
        left, width = pos["x"] / 24, pos["w"] / 24
        bottom = 1 - top - (pos["y"] + pos["h"]) * unit / height
        if panel["type"] == "row":
            figure.text(left + 0.005, bottom + 0.5 * unit / height, panel["title"], color=TEXT, fontsize=11,
                        fontweight="bold", va="center")
            continue
        ax = figure.add_axes((left + 0.03, bottom + 0.45 * unit / height, width - 0.04,
                              (pos["h"] - 1.5) * unit / height))
        ax.set_facecolor(PANEL)
        figure.patches.append(plt.Rectangle((left + 0.003, bottom + 0.1 * unit / height), width - 0.006,
                                            (pos["h"] - 0.2) * unit / height, transform=figure.transFigure,
                                            facecolor=PANEL, edgecolor=GRID, zorder=-1))
        ax.set_title(panel["title"], color=TEXT, fontsize=9.5, loc="left", pad=4)
        for side in ax.spines.values():
            side.set_visible(False)
        ax.tick_params(colors=MUTED, labelsize=7)
        ax.grid(color=GRID, linewidth=0.6)
        ax.set_axisbelow(True)
        if panel["type"] == "timeseries":
            shown[panel["title"]] = draw_graph(ax, panel, prometheus, start, end, minutes, rate)
        else:
            shown[panel["title"]] = draw_bars(ax, panel, prometheus, end, minutes, rate)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=90, facecolor=BACKGROUND)
    plt.close(figure)
    return shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--minutes", type=int, default=20, help="the time range shown, ending now")
    parser.add_argument("--rate-interval", default="1m", help="what Grafana's $__rate_interval becomes")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots/dashboard.png"))
    args = parser.parse_args()
    shown = render(args.prometheus, args.minutes, args.out, args.rate_interval)
    print(f"wrote {args.out}; panels without data: {[title for title, n in shown.items() if not n] or 'none'}")


if __name__ == "__main__":
    main()
