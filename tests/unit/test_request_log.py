"""One JSON line per request from the middleware every service app has (deployments/http.py):
with the service, replica, request id and trace id of the request, and its method, path,
route, status and duration; the probes' lines only at DEBUG."""

import contextlib
import json
import logging

import pytest
from fastapi.testclient import TestClient

from actors.common.logging import configure_logging
from deployments.http import create_service_api


@contextlib.asynccontextmanager
async def no_resources(app):
    yield


@pytest.fixture
def logged_client(request):
    logger = logging.getLogger("orderflow")
    before = logger.handlers[:], logger.level, logger.propagate
    configure_logging("edge", request.param, replica="edge#1")
    api = create_service_api("edge", title="Edge", lifespan=no_resources)

    @api.get("/items/{item_id}")
    async def item(item_id: str) -> dict:
        return {"id": item_id}

    try:
        with TestClient(api, root_path="/edge") as client:
            yield client
    finally:
        logger.handlers[:], logger.level, logger.propagate = before


def request_lines(capfd) -> list[dict]:
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    return [entry for entry in lines if entry["logger"] == "orderflow.http"]


@pytest.mark.parametrize("logged_client", ["INFO"], indirect=True)
def test_each_request_writes_one_line_with_its_context(logged_client, capfd):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = logged_client.get("/edge/items/7", headers={
        "X-Request-ID": "req-1", "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    assert response.status_code == 200
    [line] = request_lines(capfd)
    assert line["service"] == "edge" and line["replica"] == "edge#1" and line["level"] == "INFO"
    assert line["request_id"] == "req-1" and line["trace_id"] == trace_id
    assert (line["method"], line["path"], line["route"], line["status"]) == \
        ("GET", "/edge/items/7", "/edge/items/{item_id}", 200)
    assert line["duration_ms"] >= 0 and line["message"].startswith("GET /edge/items/7 200 ")


@pytest.mark.parametrize("logged_client", ["INFO"], indirect=True)
def test_an_unknown_path_and_a_head_are_logged_as_they_came(logged_client, capfd):
    assert logged_client.get("/edge/nothing-here").status_code == 404
    assert logged_client.head("/edge/items/7").status_code == 200
    missing, head = request_lines(capfd)
    assert (missing["method"], missing["path"], missing["route"], missing["status"]) == \
        ("GET", "/edge/nothing-here", "unmatched", 404)
    assert (head["method"], head["path"], head["status"]) == ("HEAD", "/edge/items/7", 200)
    assert missing["request_id"] != head["request_id"]  # each got its own id


@pytest.mark.parametrize("logged_client", ["INFO"], indirect=True)
def test_the_probes_write_no_line_at_info(logged_client, capfd):
    assert logged_client.get("/edge/health").status_code == 200
    assert request_lines(capfd) == []


@pytest.mark.parametrize("logged_client", ["DEBUG"], indirect=True)
def test_the_probes_lines_are_debug(logged_client, capfd):
    assert logged_client.get("/edge/health").status_code == 200
    [line] = request_lines(capfd)
    assert line["level"] == "DEBUG" and line["path"] == "/edge/health" and line["status"] == 200
