"""A stand-in for Grafana Loki, for the tests only: Loki itself is not installable here (no
PyPI/npm package bundles it, Debian's `loki` is an unrelated genetics tool, and its Go module
is AGPL). It speaks the part of Loki's HTTP API the stack uses, with Loki's shapes:

- `POST /loki/api/v1/push`, JSON body `{"streams": [{"stream": {labels}, "values": [[ns, line], ...]}]}`
  -> 204;
- `GET /loki/api/v1/query_range?query=...&start=&end=&limit=` with a LogQL subset: a stream
  selector of `label="value"` matchers and any number of `|= "text"` line filters ->
  `{"status": "success", "data": {"resultType": "streams", "result": [{"stream", "values"}]}}`
  (newest first, as Loki's default direction=backward);
- `GET /ready` -> 200.
Anything else in a query (regex matchers, `!=`, parsers) is a 400, as a query it cannot answer.
"""

import contextlib
import json
import re
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

SELECTOR = re.compile(r'^\{\s*(?P<matchers>[^{}]*)\}\s*(?P<filters>.*)$')
MATCHER = re.compile(r'^\s*(?P<label>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*$')
FILTER = re.compile(r'\|=\s*"(?P<text>(?:[^"\\]|\\.)*)"\s*')


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
                    labels, texts = parse_query(params.get("query", ""))
                except BadQuery as exc:
                    return self._answer(400, {"message": str(exc)})
                start, end = int(params.get("start", 0)), int(params.get("end", 2**63 - 1))
                limit = int(params.get("limit", 100))
                result = []
                with loki.lock:
                    for key, values in loki.streams.items():
                        stream = dict(key)
                        if any(stream.get(k) != v for k, v in labels.items()):
                            continue
                        kept = [[str(ts), line] for ts, line in values
                                if start <= ts <= end and all(t in line for t in texts)]
                        if kept:
                            result.append({"stream": stream, "values": sorted(kept, reverse=True)[:limit]})
                self._answer(200, {"status": "success", "data": {"resultType": "streams", "result": result}})

            def _answer(self, status: int, body=None):
                data = b"" if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                if data:
                    self.send_header("Content-Type", "application/json")
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
