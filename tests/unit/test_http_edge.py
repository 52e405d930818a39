"""What every service app does at its edge (deployments/http.py), without servers: request
ids, HEAD, OPTIONS and 405, the root route with a slash, the OpenAPI document, each kind of
problem answered with its HTTP status and headers, metrics."""

import contextlib

import pytest
from fastapi.testclient import TestClient

from pydantic import BaseModel

from actors.common.errors import Forbidden, Problem, ServiceUnavailable, TooManyRequests
from actors.common.metrics import HTTP_REQUESTS
from actors.common.security import InvalidToken
from actors.orders.domain import IllegalTransition, StaleVersion
from deployments.http import HTTP_STATUS, CurrentUser, create_service_api
from deployments.openapi import PROBLEM_STATUSES, json_body, problems


@contextlib.asynccontextmanager
async def no_resources(app):
    yield


@pytest.fixture
def client():
    api = create_service_api("edge", title="Edge", lifespan=no_resources)

    @api.get("", summary="The root route, as orders has it")
    async def root() -> dict:
        return {"root": True}

    class Inner(BaseModel):
        n: int

    class Signed(BaseModel):
        inner: Inner

    @api.post("/signed", openapi_extra=json_body(Signed))
    async def signed() -> dict:
        return {}

    @api.post("/{item_id}/close", responses=problems(409))
    async def close(item_id: str, user: CurrentUser) -> dict:
        return {"closed": item_id}

    with TestClient(api, root_path="/edge") as client:
        yield client


@pytest.mark.parametrize("sent", [b"\xff\xfe", b"a" * 129, b"two words", b""])
def test_a_request_id_that_is_not_a_sane_id_is_replaced(client, sent):
    response = client.get("/edge/health", headers={"X-Request-ID": sent})
    assert response.status_code == 200
    assert response.headers["x-request-id"].encode() != sent and len(response.headers["x-request-id"]) == 32


def test_a_sane_request_id_is_kept(client):
    assert client.get("/edge/health", headers={"X-Request-ID": "a.b:c-" + "9" * 122}).headers["x-request-id"] == \
        "a.b:c-" + "9" * 122


def test_head_is_the_get_without_its_body(client):
    response = client.head("/edge/health")
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-type"] == "application/json"


def test_options_405_and_the_gateways_trace(client):
    options = client.options("/edge/x/close")
    assert options.status_code == 204 and options.headers["allow"] == "OPTIONS, POST"
    wrong = client.get("/edge/x/close")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "OPTIONS, POST"
    assert wrong.headers["content-type"] == "application/problem+json"
    traced = client.options("/edge/health", headers={"X-Orderflow-Method-Not-Allowed": "TRACE"})
    assert traced.status_code == 405 and traced.headers["allow"] == "GET, HEAD, OPTIONS"
    assert traced.json()["status"] == 405
    assert client.options("/edge/no/such/path").status_code == 404


def test_the_root_route_answers_with_and_without_a_slash(client):
    assert client.get("/edge").json() == client.get("/edge/").json() == {"root": True}


def test_the_openapi_document(client):
    document = client.get("/edge/openapi.json").json()
    assert document["servers"] == [{"url": "/edge"}] and "/" in document["paths"] and "" not in document["paths"]
    close = document["paths"]["/{item_id}/close"]["post"]
    assert set(close["responses"]) == {"200", "401", "403", "404", "409", "422", "500", "503"}
    assert close["security"] == [{"bearerAuth": []}, {}]
    assert close["responses"]["409"]["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "/metrics" not in document["paths"]  # metrics go through Ray's pipeline (deployments/metrics.py)


def test_a_route_that_reads_its_own_body_still_documents_it(client):
    document = client.get("/edge/openapi.json").json()
    body = document["paths"]["/signed"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Signed"}
    schemas = document["components"]["schemas"]
    assert schemas["Signed"]["properties"]["inner"] == {"$ref": "#/components/schemas/Inner"} and "Inner" in schemas
    assert not any(key.startswith("x-") for key in document["paths"]["/signed"]["post"])


def test_metrics_count_requests_by_route_template(client):
    before = HTTP_REQUESTS.value(service="edge", method="POST", route="/{item_id}/close", status=200)
    client.post("/edge/abc-123/close")
    assert HTTP_REQUESTS.value(service="edge", method="POST", route="/{item_id}/close", status=200) == before + 1
    assert not any("abc-123" in value for labels in HTTP_REQUESTS.samples() for _, value in labels)
    assert client.get("/edge/metrics").status_code == 404  # not served by the app


@pytest.mark.parametrize(("problem", "status", "headers"), [
    (InvalidToken("expired"), 401, {"www-authenticate": "Bearer"}),
    (Forbidden("not staff"), 403, {}),
    (IllegalTransition("no", allowed=["paid"]), 409, {}),
    (StaleVersion("changed", current_version=2), 412, {}),
    (TooManyRequests("slow down", retry_after_s=7), 429, {"retry-after": "7"}),
    (ServiceUnavailable("away"), 503, {"retry-after": "2"}),
    (Problem("broken"), 500, {}),
])
def test_each_kind_of_problem_is_answered_with_its_status_at_the_edge(problem, status, headers):
    api = create_service_api("edge", title="Edge", lifespan=no_resources)

    @api.get("/fails")
    async def fails() -> dict:
        raise problem

    with TestClient(api, root_path="/edge") as client:
        response = client.get("/edge/fails")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert {name: response.headers.get(name) for name in ("www-authenticate", "retry-after")} == \
        {"www-authenticate": None, "retry-after": None} | headers
    assert list(response.json()) == ["type", "title", "status", "detail", "instance", *problem.extra]
    assert response.json() == {"type": f"urn:orderflow:problem:{problem.slug}", "title": problem.title,
                               "status": status, "detail": problem.detail, "instance": "/edge/fails", **problem.extra}


def test_every_status_the_edge_answers_is_described_in_the_document():
    assert set(HTTP_STATUS.values()) <= set(PROBLEM_STATUSES)
