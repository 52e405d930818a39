"""What tracing costs the orders API: the orders and auth apps under bare uvicorn (no Serve,
no nginx, so the services' own cost is what is measured), on the same databases, with

  - tracing off (the default: no OTLP endpoint; each request only continues the caller's
    `traceparent`),
  - tracing on (every request a span, exported over OTLP/HTTP to a receiver in this process
    that decodes and counts them),
  - and, with --baseline-rev, the code of that git revision (before tracing existed), run
    from a worktree of it,

in interleaved rounds (each round starts with another target, so none is always measured
first or last on a machine whose load changes). It prints requests/s and p99 per target and
endpoint (GET /orders/{id} as staff, every request with a `traceparent`; POST /orders as a
guest, which writes the outbox row with it), the median over the rounds and the ratio to
tracing off; and, measured in this process without the load's noise, what one hop costs
with tracing off (continuing the caller's `traceparent`, handing it on) against the time
one request takes at the measured rate. Needs wrk.

    .venv/bin/python -m bench.tracing_cost [--duration 10] [--rounds 3] [--baseline-rev 5a38fe5]
"""

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
import timeit
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.orders_throughput import ORDER
from bench.support import BIN, HERE, RESULTS, BenchWorld, Target, post_script, stop_on_signals, wait_serving, wrk
from deployments.stack import free_port

ROOT = HERE.parent
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Receiver(BaseHTTPRequestHandler):
    """OTLP/HTTP traces endpoint: decodes each export and counts its spans."""

    spans = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        Receiver.spans += sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def start_bare(name: str, world: BenchWorld, env: dict, source: Path = ROOT) -> Target:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(BIN / "python"), str(source / "bench" / "bare_server.py"), "--port", str(port)],
        env=world.env | env | {"AUTH_URL": f"{url}/auth", "PYTHONPATH": str(source)}, cwd=source,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_serving(process, f"{url}/orders/ready", f"{url}/auth/ready")
    return Target(name, url, process)


def measure(target: Target, seconds: int, connections: int) -> dict:
    token = target.login()
    order = httpx.post(f"{target.base_url}/orders", json=ORDER, timeout=10).json()
    get_url = f"{target.base_url}/orders/{order['id']}"
    traced = f'wrk.headers["traceparent"] = "{TRACEPARENT}"\n'
    wrk(get_url, 5, connections, token=token, script=traced)  # warm-up
    results = {}
    for endpoint, url, script, auth in [
        ("GET /orders/{id}", get_url, traced, token),
        ("POST /orders", f"{target.base_url}/orders", post_script(json.dumps(ORDER)) + traced, None),
    ]:
        r = results[endpoint] = wrk(url, seconds, connections, script=script, token=auth)
        print(f"  {target.name:<22} {endpoint:<18} {r['rps']:>8.0f} req/s  p50 {r['p50_ms']:>6.1f} ms"
              f"  p99 {r['p99_ms']:>6.1f} ms  non-2xx {r['non_2xx']}", flush=True)
    return results


@contextlib.contextmanager
def checkout(rev: str):
    path = Path(tempfile.mkdtemp(prefix="orderflow-tracing-baseline-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev], check=True,
                   capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)


def hop_cost_us(repeat: int = 200_000) -> float:
    """Microseconds per request of what a service does for tracing when it is off: continue
    the caller's `traceparent` and hand it on once (the outbox row)."""
    from actors.common.tracing import continued, current_traceparent

    def hop():
        with continued(TRACEPARENT.encode(), "GET"):
            current_traceparent()

    return min(timeit.repeat(hop, number=repeat, repeat=3)) / repeat * 1e6


def main() -> None:
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-rev", help="also measure this git revision's code (before tracing)")
    args = parser.parse_args()

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    no_otel = {k: "" for k in os.environ if k.startswith("OTEL_")}
    targets = {
        "tracing off": (no_otel, ROOT),
        "tracing on (OTLP)": (no_otel | {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_port}"},
                              ROOT),
    }
    print(f"{args.connections} connections, {args.duration}s per endpoint, {args.rounds} rounds, "
          f"{os.cpu_count()} CPUs\n", flush=True)
    runs: dict[str, list[dict]] = {name: [] for name in targets}
    with contextlib.ExitStack() as stack:
        if args.baseline_rev:
            targets[f"before tracing ({args.baseline_rev})"] = (no_otel, stack.enter_context(checkout(args.baseline_rev)))
            runs[f"before tracing ({args.baseline_rev})"] = []
        world = stack.enter_context(BenchWorld("tracing_bench"))
        for round_number in range(1, args.rounds + 1):
            print(f"round {round_number}", flush=True)
            names = list(targets)
            shift = (round_number - 1) % len(names)
            for name in names[shift:] + names[:shift]:
                env, source = targets[name]
                target = start_bare(name, world, env, source)
                try:
                    runs[name].append(measure(target, args.duration, args.connections))
                finally:
                    target.stop()
    receiver.shutdown()

    medians = {name: {endpoint: {key: statistics.median(r[endpoint][key] for r in rounds)
                                 for key in ("rps", "p50_ms", "p99_ms")}
                      for endpoint in rounds[0]} for name, rounds in runs.items()}
    baseline = medians["tracing off"]
    print(f"\nmedian of {args.rounds} rounds; ratio of requests/s to tracing off "
          f"(spans received by the OTLP receiver: {Receiver.spans}):")
    for name, by_endpoint in medians.items():
        parts = ", ".join(f"{ep} {m['rps']:.0f} req/s ({m['rps'] / baseline[ep]['rps']:.3f}) p99 {m['p99_ms']:.1f} ms"
                          for ep, m in by_endpoint.items())
        print(f"  {name:<26} {parts}")
    hop = hop_cost_us()
    per_request_us = {ep: (os.cpu_count() or 1) * 1e6 / m["rps"] for ep, m in baseline.items()}
    print(f"\none hop with tracing off: {hop:.1f} us; a request's CPU time at the tracing-off rate: "
          + ", ".join(f"{ep} {us:.0f} us ({hop / us:.2%})" for ep, us in per_request_us.items()))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"tracing_cost-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"connections": args.connections, "duration_s": args.duration, "rounds": runs,
                               "medians": medians, "spans_exported": Receiver.spans,
                               "hop_cost_off_us": hop}, indent=2))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
