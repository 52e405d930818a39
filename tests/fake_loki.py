"""A stand-in for Grafana Loki, for the tests only. Why not the real one: Loki cannot be
installed on this machine: Debian's `loki` package is an unrelated genetics tool, no PyPI or
npm package bundles Grafana Loki, and the Go module registry marks github.com/grafana/loki/v3
as not to be used (it is under the AGPL). Compose and k8s/logging run the real Loki.

It speaks the part of Loki's HTTP API the stack uses, with Loki's shapes:

- `POST /loki/api/v1/push` with a JSON body (`Content-Type: application/json`, not compressed)
  `{"streams": [{"stream": {labels}, "values": [[ns, line], ...]}]}` -> 204;
- `GET /loki/api/v1/query_range?query=...&start=&end=&limit=&direction=backward` (start and
  end in nanoseconds, by default the last hour as in Loki; limit: lines in all, newest first)
  with a LogQL subset: a stream selector of `label="value"` matchers and any number of
  `|= "text"` line filters ->
  `{"status": "success", "data": {"resultType": "streams", "result": [{"stream", "values"}]}}`;
- `GET /ready` -> 200.

It refuses what it does not implement rather than answer it wrongly: any other query (regex
matchers, `!=`, parsers, metric queries), another parameter or direction, a time that is not
nanoseconds is a 400; a protobuf, snappy or gzip push is a 415; any other path a 404.
"""

import contextlib
import json
import re
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SELECTOR = re.compile(r'^\{\s*(?P<matchers>[^{}]*)\}\s*(?P<filters>.*)$')
MATCHER = re.compile(r'^\s*(?P<label>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*$')
FILTER = re.compile(r'\|=\s*"(?P<text>(?:[^"\\]|\\.)*)"\s*')
QUERY_RANGE_PARAMS = {"query", "start", "end", "limit", "direction"}
DEFAULT_RANGE_NS = 3600 * 10**9  # Loki's default: the hour before `end`


class BadQuery(ValueError):
    pass


def parse_query(query: str) -> tuple[dict[str, str], list[str]]:
    found = SELECTOR.match(query.strip())
    if not found:
        raise BadQuery("expected {label=\"value\", ...} followed by |= \"text\" filters")
    labels = {}
    for part in filter(str.strip, found["matchers"].split(",")):
        matcher = MATCHER.match(part)
        if not matcher:
            raise BadQuery(f"unsupported matcher: {part}")
        labels[matcher["label"]] = json.loads(f'"{matcher["value"]}"')
    rest, texts = found["filters"], []
    while rest.strip():
        line_filter = FILTER.match(rest.strip())
        if not line_filter:
            raise BadQuery(f"unsupported pipeline: {rest}")
        texts.append(json.loads(f'"{line_filter["text"]}"'))
        rest = rest.strip()[line_filter.end():]
    return labels, texts


def whole_number(value: str | None, default: int) -> int:
    """A parameter that is a whole number: `limit`, or a time in nanoseconds (Loki also takes
    RFC 3339 and seconds with a fraction: not implemented)."""
    if value is None:
        return default
    if not value.isdigit():
        raise BadQuery(f"expected a whole number (a time in nanoseconds), got {value!r}")
    return int(value)


class FakeLoki:
    def __init__(self):
        self.streams: dict[tuple, list[tuple[int, str]]] = defaultdict(list)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def _handler(self):
        loki = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                if urlsplit(self.path).path != "/loki/api/v1/push":
                    return self._answer(404, {"message": "not found"})
                content_type = self.headers.get("Content-Type", "").partition(";")[0].strip()
                if content_type != "application/json" or self.headers.get("Content-Encoding"):
                    return self._answer(415, {"message": "only an uncompressed JSON push is implemented"})
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                    with loki.lock:
                        for stream in body["streams"]:
                            key = tuple(sorted(stream["stream"].items()))
                            loki.streams[key] += [(int(ts), line) for ts, line in stream["values"]]
                except (ValueError, KeyError, TypeError) as exc:
                    return self._answer(400, {"message": f"bad push: {exc}"})
                self._answer(204)

            def do_GET(self):
                url = urlsplit(self.path)
                if url.path == "/ready":
                    return self._answer(200, "ready")
                if url.path != "/loki/api/v1/query_range":
                    return self._answer(404, {"message": "not found"})
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                try:
                    if unknown := params.keys() - QUERY_RANGE_PARAMS:
                        raise BadQuery(f"unsupported parameters: {', '.join(sorted(unknown))}")
                    if params.get("direction", "backward") != "backward":
                        raise BadQuery("only direction=backward is implemented")
                    labels, texts = parse_query(params.get("query", ""))
                    end = whole_number(params.get("end"), time.time_ns())
                    start = whole_number(params.get("start"), end - DEFAULT_RANGE_NS)
                    limit = whole_number(params.get("limit"), 100)
                except BadQuery as exc:
                    return self._answer(400, {"message": str(exc)})
                with loki.lock:
                    kept = [(ts, key, line) for key, values in loki.streams.items()
                            if all(dict(key).get(k) == v for k, v in labels.items())
                            for ts, line in values if start <= ts <= end and all(t in line for t in texts)]
                newest = sorted(kept, key=lambda found: found[0], reverse=True)[:limit]
                by_stream: dict[tuple, list] = defaultdict(list)
                for ts, key, line in newest:
                    by_stream[key].append([str(ts), line])
                result = [{"stream": dict(key), "values": values} for key, values in by_stream.items()]
                self._answer(200, {"status": "success", "data": {"resultType": "streams", "result": result}})

            def _answer(self, status: int, body=None):
                data = b"" if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler


@contextlib.contextmanager
def running_fake_loki():
    loki = FakeLoki()
    thread = threading.Thread(target=loki.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield loki
    finally:
        loki.server.shutdown()
        loki.server.server_close()
