"""The operations commands' pure parts (deployments/ops.py): log lines made readable and
followed across the stack's files, replicas per node from Serve's status API."""

import io
import json

from deployments.ops import follow, readable, replicas_per_node, show_errors
from deployments.stack import StackSettings
from tests.support import wait_for


def test_a_service_line_is_made_readable_with_its_context():
    line = json.dumps({"ts": "2026-11-30T05:01:02.345+00:00", "level": "INFO", "service": "orders",
                       "replica": "orders#Orders#ab12cd", "message": "order created", "order_id": "o-1",
                       "request_id": "r-1", "trace_id": "t" * 32})
    assert readable(line) == ("orders", f"05:01:02 INFO    orders[ab12cd] order created  "
                                        f"(order_id=o-1, request_id=r-1, trace_id={'t' * 32})")


def test_a_gateway_line_reads_as_a_request_and_other_lines_stay_as_they_are():
    line = json.dumps({"ts": "2026-11-30T05:01:02+00:00", "service": "gateway", "request_id": "r-1",
                       "trace_id": "", "method": "POST", "uri": "/orders", "status": 201, "duration_s": 0.012})
    assert readable(line) == ("gateway", "05:01:02 gateway POST /orders -> 201 in 0.012 s  (request_id=r-1)")
    assert readable("plain text from Ray") == (None, "plain text from Ray")
    assert readable('{"no": "service"}')[0] is None


def test_follow_shows_each_services_lines_once_and_only_the_wanted_service(tmp_path):
    stack = StackSettings(run_dir=tmp_path / "run")
    logs = stack.ray_temp_dir / "session_latest" / "logs"
    logs.mkdir(parents=True)
    stack.run_dir.mkdir(parents=True, exist_ok=True)
    (stack.run_dir / "nginx-access.log").write_text(json.dumps({"service": "gateway", "uri": "/orders"}) + "\n")
    worker = logs / "worker-1.err"
    worker.write_text("ray noise\n" + json.dumps({"service": "orders", "message": "order created"}) + "\n"
                      + json.dumps({"service": "auth", "message": "login"}) + "\n")
    out = io.StringIO()
    assert follow(stack, None, once=True, out=out) == 3
    only = io.StringIO()
    assert follow(stack, "orders", once=True, out=only) == 1
    assert "order created" in only.getvalue() and "login" not in only.getvalue()


def test_replicas_are_counted_per_application_and_node():
    details = {"applications": {
        "orders": {"status": "RUNNING", "deployments": {"Orders": {"replicas": [
            {"state": "RUNNING", "node_ip": "10.0.0.1"}, {"state": "RUNNING", "node_ip": "10.0.0.2"},
            {"state": "RUNNING", "node_ip": "10.0.0.1"}, {"state": "STARTING", "node_ip": "10.0.0.2"}]}}},
        "auth": {"status": "DEPLOYING", "deployments": {"Auth": {"replicas": []}}}}}
    assert replicas_per_node(details) == {
        "orders": {"status": "RUNNING", "replicas": {"10.0.0.1": 2, "10.0.0.2": 1}},
        "auth": {"status": "DEPLOYING", "replicas": {}}}


def test_the_quiet_console_shows_only_errors_written_after_it_started(tmp_path):
    import threading

    stack = StackSettings(run_dir=tmp_path / "run")
    logs = stack.ray_temp_dir / "session_latest" / "logs"
    logs.mkdir(parents=True)
    worker = logs / "worker-1.err"
    worker.write_text(json.dumps({"service": "orders", "level": "ERROR", "message": "old error"}) + "\n")
    out, stopping = io.StringIO(), threading.Event()
    watcher = show_errors(stack, stopping, out=out)
    with worker.open("a") as file:
        file.write(json.dumps({"service": "orders", "level": "INFO", "message": "order created"}) + "\n")
        file.write(json.dumps({"service": "orders", "level": "ERROR", "message": "pool gone"}) + "\n")
        file.write("Traceback (most recent call last):\n")
    try:
        wait_for(lambda: "Traceback" in out.getvalue(), "the error lines on the console", 10)
    finally:
        stopping.set()
        watcher.join(5)
    shown = out.getvalue()
    assert "pool gone" in shown and "Traceback" in shown
    assert "old error" not in shown and "order created" not in shown
