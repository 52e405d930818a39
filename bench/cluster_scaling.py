"""Scale-out on a Ray cluster of a head and two workers on this machine (`orderflow cluster`,
Ray's autoscaler on its fake multi-node provider): load steps through the gateway, and over
time the replicas Serve wants and runs per application and the Ray nodes alive.

Each step (STEPS) runs for --step-s seconds: customers placing, paying and reading orders
(the order flow of tests/cluster) all along, order readers added until orders scales, then
analytics readers, then sign-ins (auth) until the cluster outgrows its two workers and Ray's
autoscaler starts a node. Then the load stops and the bench watches replicas and nodes go
back down. Prints per step requests/s (and the ratio to
the first, lightest step, measured in the same run), failed requests, replicas and nodes,
and the largest load held without a failed request; saves the timeline (JSON) and its plot
under bench/results/.

    .venv/bin/python -m bench.cluster_scaling [--step-s 90] [--settle-s 420]
"""

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from bench.support import ADMIN, RESULTS, stop_on_signals
from tests.cluster.conftest import ClusterStack
from tests.cluster.load import Load, Timeline, order_flow, reads, sign_ins, stats_reads
from tests.e2e.conftest import running

# Each step: its name and its loads (concurrent clients, what each does). Customers place,
# pay and read orders; readers page through 200 orders (/orders) or ask for statistics
# (/analytics/stats), work on the replicas rather than on this client.
CUSTOMERS = (8, order_flow, ())
ORDER_READERS = lambda n: (n, reads, ("/orders?limit=200",))  # noqa: E731
ANALYTICS_READERS = (32, stats_reads, ())
SIGN_INS = (64, sign_ins, ())  # each its own account: password hashing on the auth replicas
STEPS = [
    ("8 customers", [CUSTOMERS]),
    ("+32 order readers", [CUSTOMERS, ORDER_READERS(32)]),
    ("+96 order readers", [CUSTOMERS, ORDER_READERS(96)]),
    ("+96 order +32 analytics readers", [CUSTOMERS, ORDER_READERS(96), ANALYTICS_READERS]),
    ("+64 sign-ins", [CUSTOMERS, ORDER_READERS(96), ANALYTICS_READERS, SIGN_INS]),
]
APPS = ("orders", "auth", "notification", "analytics")


async def measure(stack: ClusterStack, step_s: float, settle_s: float) -> tuple[list[dict], list[dict]]:
    token = httpx.post(f"{stack.url}/auth/login", json=ADMIN, timeout=30).json()["access_token"]
    steps = []
    async with Timeline(stack.dashboard) as timeline:
        for name, loads in STEPS:
            timeline.step = name
            async with contextlib.AsyncExitStack() as running_loads:
                records = [(await running_loads.enter_async_context(Load(stack.url, token, n, flow, *args))).record
                           for n, flow, args in loads]
                started = time.monotonic()
                await asyncio.sleep(step_s)
                elapsed = time.monotonic() - started
            total = sum(r.total for r in records)
            step = {"step": name, "clients": sum(n for n, _, _ in loads), "rps": round(total / elapsed, 1),
                    "order_flow_rps": round(records[0].total / elapsed, 1), "failed": sum(r.failed for r in records),
                    "failed_statuses": dict(sum((r.statuses for r in records), Counter())),
                    "orders_placed": len(records[0].created),
                    "peak_replicas": {app: timeline.peak(app, name) for app in APPS},
                    "peak_nodes": timeline.peak_nodes(name)}
            step["failed_statuses"] = {str(s): n for s, n in step["failed_statuses"].items() if s >= 400}
            step["failed_kinds"] = dict(sum((r.failed_kinds for r in records), Counter()))
            step["first_answers"] = {kind: answer for r in reversed(records) for kind, answer in r.first_answers.items()}
            steps.append(step)
            print(f"  {name:<34} {step['rps']:>7} req/s  failed {step['failed']:>3}  "
                  f"replicas {step['peak_replicas']}  nodes {step['peak_nodes']}", flush=True)
            for kind, n in step["failed_kinds"].items():
                print(f"    {n:>5} x {kind}, the first: {step['first_answers'][kind]}", flush=True)
        timeline.step = "no load"
        await asyncio.sleep(settle_s)
    return steps, timeline.samples


def plot(samples: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (replicas, nodes) = plt.subplots(2, 1, sharex=True, figsize=(12, 6), height_ratios=[3, 1])
    times = [s["t_s"] for s in samples]
    for app in ("orders", "auth", "notification", "analytics"):
        replicas.step(times, [s["running"].get(app, 0) for s in samples], where="post", label=f"{app} running")
    replicas.step(times, [s["targets"].get("orders", 0) for s in samples], where="post", linestyle=":",
                  color="grey", label="orders target")
    replicas.set_ylabel("replicas")
    replicas.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    nodes.step(times, [s["nodes"] for s in samples], where="post", color="black")
    nodes.set_ylabel("Ray nodes")
    nodes.set_xlabel("seconds")
    bands = []  # the load steps, shaded
    for sample in samples:
        if not bands or bands[-1][0] != sample["step"]:
            bands.append([sample["step"], sample["t_s"], sample["t_s"]])
        bands[-1][2] = sample["t_s"]
    top = max(max(s["running"].values(), default=0) for s in samples) + 1
    replicas.set_ylim(0, top)
    for n, (step, start, end) in enumerate(bands):
        replicas.axvspan(start, end, alpha=0.12 if n % 2 else 0.05, color="tab:blue")
        replicas.text(start + 3, 0.1, step, fontsize=7, rotation=90, va="bottom")
    fig.suptitle("Orderflow on a Ray cluster (head + 2 workers + autoscaler), load steps through the gateway")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step-s", type=float, default=90, help="seconds per load step")
    parser.add_argument("--settle-s", type=float, default=420,
                        help="seconds watched after the load (downscale_delay_s: orders 120, analytics 300)")
    args = parser.parse_args()
    with contextlib.contextmanager(running)(ClusterStack(Path(tempfile.mkdtemp(prefix="orderflow-cluster-")))) as stack:
        steps, samples = asyncio.run(measure(stack, args.step_s, args.settle_s))
    baseline = steps[0]["rps"]
    print("\nratio to the first step (requests/s through the gateway, all clients):")
    for step in steps:
        print(f"  {step['step']:<34} {step['rps'] / baseline:.2f}")
    held = [s for s in steps if s["failed"] == 0]
    if held:
        print(f"\nlargest load held without a failed request: {held[-1]['step']} "
              f"({held[-1]['clients']} clients, {held[-1]['rps']} req/s)")
    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"cluster_scaling-{stamp}.json").write_text(json.dumps({"steps": steps, "samples": samples}, indent=1))
    plot(samples, RESULTS / f"cluster_scaling-{stamp}.png")
    print(f"\nwritten to {RESULTS}/cluster_scaling-{stamp}.json and .png")


if __name__ == "__main__":
    main()
