"""The OpenAPI document every service serves, made true to what it answers: the
problem+json errors of each operation, the bearer scheme, bodies a route reads itself."""

from collections.abc import Callable

from fastapi import FastAPI
from pydantic import BaseModel

PROBLEM_JSON = "application/problem+json"
PROBLEM_SCHEMA = {
    "title": "Problem",
    "description": "RFC 9457 problem details; some problems carry more members (errors, checks ...).",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}
PROBLEM_STATUSES = {
    400: "Bad request (e.g. a body that is not JSON)",
    401: "No valid access token",
    403: "The token's roles do not allow this",
    404: "Not found",
    409: "Conflicts with the resource's state",
    412: "The resource changed since the version in If-Match",
    413: "Body larger than 1 MiB",
    422: "The request does not match the contract; see `errors`",
    428: "A precondition header is required",
    429: "Too many attempts; try again after Retry-After",
    500: "Unexpected error (logged)",
    503: "A dependency is unavailable; try again after Retry-After",
}
BEARER = "bearerAuth"
EXTRA_SCHEMAS = "x-orderflow-schemas"  # json_body's models, moved into components.schemas


def json_body(model: type[BaseModel]) -> dict:
    """`openapi_extra=` of a route that reads its body itself (e.g. to check a signature over
    the raw bytes): the document still says which JSON it takes."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = {**schema.pop("$defs", {}), model.__name__: schema}
    return {
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}},
        EXTRA_SCHEMAS: schemas,
    }


def problems(*statuses: int) -> dict[int | str, dict]:
    """`responses=` of a route: the problem statuses its use case raises besides the ones
    the document adds from what the route takes (body, path parameters, current user)."""
    return {status: {"description": PROBLEM_STATUSES.get(status, "Problem")} for status in statuses}


def _uses(dependant, call) -> bool:
    return any(d.call is call or _uses(d, call) for d in dependant.dependencies)


def openapi_with_errors(api: FastAPI, *, caller: Callable) -> dict:
    """FastAPI's document, made true to what the service answers: every operation lists the
    problem+json errors it can give (from what it takes: a body, path parameters, the
    current user; plus the statuses a route declares in `responses=`), operations that know
    the caller (depend on `caller`) take a bearer token, and the root route is `/` (FastAPI
    writes "")."""
    if api.openapi_schema:
        return api.openapi_schema
    document = FastAPI.openapi(api)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["securitySchemes"] = {BEARER: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
    routes = {(r.path_format, m.lower()): r for r in api.routes if hasattr(r, "dependant") for m in getattr(r, "methods", ())}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            route = routes[(path, method)]
            schemas |= operation.pop(EXTRA_SCHEMAS, {})
            statuses = {500, 503} if path != "/health" else {500}
            if operation.get("requestBody"):
                statuses |= {400, 413, 422}
            if operation.get("parameters"):
                statuses.add(422)
            if route.dependant.path_params:
                statuses.add(404)
            # Serve ships the app to its replicas pickled, which copies FastAPI's "unset"
            # sentinel: every parameter and body then showed `"example": {}`.
            media = operation.get("requestBody", {}).get("content", {}).values()
            for described in [*operation.get("parameters", []), *media]:
                if described.get("example") == {}:
                    del described["example"]
            if _uses(route.dependant, caller):
                statuses |= {401, 403}
                operation["security"] = [{BEARER: []}, {}]  # a guest may call some of them
            responses = operation.setdefault("responses", {})
            statuses |= {int(code) for code in responses if code.isdigit() and int(code) >= 400}
            for status in sorted(statuses):
                declared = responses.get(str(status), {})
                responses[str(status)] = {
                    "description": declared.get("description") or PROBLEM_STATUSES.get(status, "Problem"),
                    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
    if "" in document["paths"]:
        document["paths"] = {("/" if path == "" else path): item for path, item in document["paths"].items()}
    api.openapi_schema = document
    return document
