"""Ships the stack's log files to Loki over its push API (`POST /loki/api/v1/push`, JSON),
as promtail does in Compose and Kubernetes: the gateway's access log and every Ray worker's
output (where the replicas' JSON lines go). Each line is sent as written, in a stream
labelled job="orderflow", service (the JSON line's `service`, else "ray") and host; the
offset reached in each file is kept, so each line is sent once.

    python -m deployments.logship --loki http://127.0.0.1:3100 [--run-dir run] [--once]
"""

import argparse
import json
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx

from deployments.stack import StackSettings

MAX_BATCH_LINES = 5000


def stack_log_files(stack: StackSettings) -> list[Path]:
    """The gateway's access log and the Ray workers' output files of the running session."""
    logs = stack.ray_temp_dir / "session_latest" / "logs"
    return [stack.run_dir / "nginx-access.log", *sorted(logs.glob("worker-*.err")), *sorted(logs.glob("worker-*.out"))]


def service_of(line: str) -> str:
    if line.startswith("{"):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            return "ray"
        if isinstance(entry, dict) and isinstance(entry.get("service"), str):
            return entry["service"]
    return "ray"


class FileTail:
    """The complete lines appended to a changing set of files (`files()` names them; new
    ones appear) since the last read, each once. `from_end`: the files there now are read
    from their current end."""

    def __init__(self, files: Callable[[], list[Path]], *, from_end: bool = False):
        self.files = files
        self.offsets: dict[Path, int] = {}
        if from_end:
            self.offsets = {path: path.stat().st_size for path in files() if path.exists()}

    def new_lines(self) -> list[str]:
        lines = []
        for path in self.files():
            try:
                with path.open("rb") as file:
                    start = self.offsets.get(path, 0)
                    if file.seek(0, 2) < start:  # truncated or replaced: from its start
                        start = 0
                    file.seek(start)
                    data = file.read()
            except FileNotFoundError:
                continue
            complete = data[: data.rfind(b"\n") + 1]
            self.offsets[path] = start + len(complete)
            lines += [raw for raw in complete.decode("utf-8", "replace").splitlines() if raw.strip()]
        return lines


class LogShipper:
    def __init__(self, loki_url: str, files: Callable[[], list[Path]], *, host: str | None = None,
                 timeout_s: float = 10):
        self.push_url = f"{loki_url.rstrip('/')}/loki/api/v1/push"
        self.tail = FileTail(files)
        self.host = host or socket.gethostname()
        self.timeout_s = timeout_s

    def ship_once(self) -> int:
        """Push what was written since the last call; how many lines."""
        lines = [(service_of(line), line) for line in self.tail.new_lines()]
        for first in range(0, len(lines), MAX_BATCH_LINES):
            self._push(lines[first:first + MAX_BATCH_LINES])
        return len(lines)

    def _push(self, lines: list[tuple[str, str]]) -> None:
        now = time.time_ns()
        streams: dict[str, list] = defaultdict(list)
        for n, (service, line) in enumerate(lines):
            streams[service].append([str(now + n), line])  # Loki wants increasing timestamps per stream
        body = {"streams": [{"stream": {"job": "orderflow", "service": service, "host": self.host}, "values": values}
                            for service, values in streams.items()]}
        response = httpx.post(self.push_url, json=body, timeout=self.timeout_s)
        response.raise_for_status()

    def run(self, interval_s: float = 1.0) -> None:
        while True:
            self.ship_once()
            time.sleep(interval_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loki", required=True, help="Loki's base URL, e.g. http://127.0.0.1:3100")
    parser.add_argument("--run-dir", type=Path, help="the stack's run directory (default: ORDERFLOW_RUN_DIR or run)")
    parser.add_argument("--once", action="store_true", help="ship what is there and exit")
    args = parser.parse_args()
    stack = StackSettings(run_dir=args.run_dir) if args.run_dir else StackSettings()
    shipper = LogShipper(args.loki, lambda: stack_log_files(stack))
    if args.once:
        print(f"shipped {shipper.ship_once()} lines")
    else:
        try:
            shipper.run()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
