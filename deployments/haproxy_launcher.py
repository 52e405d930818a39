"""How Ray Serve's throughput mode starts HAProxy here: RAY_SERVE_HAPROXY_BINARY_PATH points at
a two-line script (written by deployments.stack) that runs `python -m deployments.haproxy_launcher
<real haproxy> <Serve's arguments>`. The launcher hardens the configuration Serve generated, in
place, and then exec's the real binary with the same arguments (same pid, same command line,
so Serve still recognises and signals its workers).

Serve's template (ray/serve/_private/haproxy_templates.py) hard-codes what a deployment must not
have, and offers no setting for it:
- the stats page and the Prometheus exporter `bind *:` / `bind :` (every address, no login):
  they are bound to 127.0.0.1 instead (scrape them on the host itself);
- the admin socket has `mode 666 level admin` (any local user could disable backends): 600;
- HAProxy's own errors (400 for a request it cannot parse, 408, 5xx, the 404 of a path no
  application serves) are text/plain: they become problem+json like every other error;
- a replica's request timeout (request_timeout_s) is a text/plain 408 from Serve: it becomes
  the 504 problem the gateway answers for its own timeout (the gateway's nginx cannot take an
  upstream 408 over: it closes the client's connection instead);
- an X-Request-ID with a non-UTF-8 byte made Serve's replica answer 500 text/plain before
  the app saw the request: only a sane id (the gateway's rule) is passed on.
"""

import fcntl
import json
import os
import re
import sys
from pathlib import Path

LOCAL_ONLY = "127.0.0.1"
PROBLEM_JSON = "application/problem+json"

# Statuses HAProxy answers by itself (`errorfile` accepts these codes).
_OWN_ERRORS = {
    400: ("Bad Request", "The request is not valid HTTP."),
    408: ("Request Timeout", "The request was not received in time."),
    500: ("Internal Server Error", "Something went wrong on our side; try again."),
    501: ("Not Implemented", "The request uses an HTTP feature the server does not support."),
}
# Serve maps HAProxy's 502/503/504 to a 500 on purpose (its errorfile lines point at one
# 500 page); the status is kept, the body becomes a problem.
_SERVE_MAPS_TO_500 = (502, 503, 504)

_ANY_ADDRESS_BIND = re.compile(r"^(\s*bind\s+)\*?:(\d+)\b", re.MULTILINE)
_SOCKET_MODE = re.compile(r"^(\s*stats socket\s+\S+\s+mode\s+)\d+", re.MULTILINE)
_ERRORFILE = re.compile(r"^\s*errorfile\s+\d+\s+\S+\n", re.MULTILINE)
_DEFAULTS = re.compile(r"^defaults\n", re.MULTILINE)
_HTTP_FRONTEND = re.compile(r"^frontend http_frontend\n\s*bind [^\n]*\n", re.MULTILINE)
_REQUEST_ID_RULES = (
    "    # Orderflow: an X-Request-ID that is not a sane id is dropped; Serve then makes one.\n"
    "    acl orderflow_sane_request_id req.fhdr(x-request-id) -m reg ^[A-Za-z0-9._:-]{1,128}$\n"
    "    http-request del-header x-request-id if { req.fhdr_cnt(x-request-id) gt 1 }\n"
    "    http-request del-header x-request-id if { req.fhdr(x-request-id) -m found } !orderflow_sane_request_id\n"
)
_TIMEOUT_MARK = "orderflow_serve_timeout"
_TIMEOUT_DETAIL = ("The service did not answer in time. The request may still have taken effect: read the current "
                   "state (or repeat a create with the same Idempotency-Key) before trying a change again.")
_NOT_ROUTED = re.compile(r"^(\s*http-request return status 404 )content-type text/plain .*$", re.MULTILINE)


def problem_body(status: int, title: str, detail: str) -> str:
    return json.dumps(
        {"type": f"urn:orderflow:problem:http-{status}", "title": title, "status": status, "detail": detail},
        separators=(",", ":"),
    )


def error_page(status: int, title: str, detail: str, *, reason: str | None = None) -> bytes:
    """A raw HTTP response in the form HAProxy's `errorfile` expects."""
    body = problem_body(status, title, detail).encode()
    head = (
        f"HTTP/1.1 {status} {title}\r\n"
        f"Content-Type: {PROBLEM_JSON}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n\r\n"
    )
    return head.encode() + body


def write_error_pages(directory: Path) -> dict[int, Path]:
    """The problem+json pages for every status HAProxy answers itself, by status."""
    pages = {}
    for status, (title, detail) in _OWN_ERRORS.items():
        path = directory / f"problem-{status}.http"
        content = error_page(status, title, detail)
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
        pages[status] = path
    for status in _SERVE_MAPS_TO_500:
        pages[status] = pages[500]
    return pages


def harden(config: str, error_pages: dict[int, Path]) -> str:
    """Serve's generated configuration with the changes above; applying it twice changes
    nothing more. Raises ValueError when the template no longer looks as expected (a Ray
    upgrade): better no ingress than a stats page open to the network."""
    config, binds = _ANY_ADDRESS_BIND.subn(rf"\g<1>{LOCAL_ONLY}:\g<2>", config)
    config, sockets = _SOCKET_MODE.subn(r"\g<1>600", config)
    if not sockets and "stats socket" in config:
        raise ValueError("HAProxy config: 'stats socket' without a mode; refusing to start it")
    config = _ERRORFILE.sub("", config)
    errorfiles = "".join(f"    errorfile {status} {path}\n" for status, path in sorted(error_pages.items()))
    config, defaults = _DEFAULTS.subn(f"defaults\n{errorfiles}", config, count=1)
    if not defaults:
        raise ValueError("HAProxy config has no 'defaults' section; refusing to start it")
    if "orderflow_sane_request_id" not in config:
        config, frontends = _HTTP_FRONTEND.subn(lambda m: m.group(0) + _REQUEST_ID_RULES + _timeout_rule(), config,
                                                count=1)
        if not frontends:
            raise ValueError("HAProxy config has no 'frontend http_frontend' with a bind; refusing to start it")
    body = problem_body(404, "Not Found", "No service is routed at this path.")
    config = _NOT_ROUTED.sub(rf"\g<1>content-type {PROBLEM_JSON} string '{body}'", config)
    return config


def _timeout_rule() -> str:
    body = problem_body(504, "Gateway Timeout", _TIMEOUT_DETAIL).replace('"urn:orderflow:problem:http-504"',
                                                                        '"urn:orderflow:problem:gateway-timeout"')
    return (
        "    # Orderflow: Serve's request timeout (a text/plain 408) is the 504 problem.\n"
        f"    acl {_TIMEOUT_MARK} status 408\n"
        f"    http-response return status 504 content-type {PROBLEM_JSON} string '{body}' "
        f"if {_TIMEOUT_MARK} !{{ res.hdr(content-type) -m beg {PROBLEM_JSON} }}\n"
    )


def _config_path(args: list[str]) -> Path | None:
    try:
        return Path(args[args.index("-f") + 1])
    except (ValueError, IndexError):
        return None  # e.g. `-v`: nothing to harden


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit("usage: python -m deployments.haproxy_launcher <haproxy binary> <haproxy arguments>")
    binary, args = argv[0], argv[1:]
    if config := _config_path(args):
        pages = write_error_pages(config.parent)
        # Serve writes the file under this lock; a reload may be writing it right now.
        with open(f"{config}.lock", "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            text = config.read_text()
            hardened = harden(text, pages)
            if hardened != text:
                config.write_text(hardened)
    os.execv(binary, [binary, *args])


if __name__ == "__main__":
    main(sys.argv[1:])
