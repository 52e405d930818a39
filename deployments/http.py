"""What every service's FastAPI app shares: problem+json errors, the request context
(X-Request-ID, JSON logs, request metrics, HEAD and OPTIONS), a body-size limit, the current user,
Swagger UI without a CDN, and the OpenAPI document of deployments/openapi.py."""

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

import swagger_ui_bundle
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actors.common.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    Problem,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
)
from actors.common.logging import configure_logging, get_logger, order_id_var, request_id_var
from actors.common.metrics import DEPENDENCY_UP, READY, observe_request
from actors.common.security import (
    GUEST,
    STAFF,
    AuthServiceSessionCheck,
    InvalidToken,
    JwksKeySource,
    Principal,
    RedisSessionCheck,
    TokenVerifier,
    require_roles,
    require_signed_in,
)
from actors.common.settings import CommonSettings
from actors.common.tracing import SpanKind, configure_tracing, continued
from deployments.openapi import PROBLEM_JSON, openapi_with_errors

MAX_BODY_BYTES = 1024 * 1024
# Routes asked every few seconds by Serve's health check and the probes: their request lines
# are DEBUG (LOG_LEVEL=DEBUG shows them), every other request's are INFO.
PROBE_ROUTES = frozenset({"/health", "/ready"})
# The X-Request-ID kept from a caller (the gateway and Serve's HAProxy apply the same rule);
# anything else is replaced by a fresh id.
REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
log = get_logger("http")


# The HTTP status of each kind of problem: the services raise kinds, the edge answers with
# statuses (as cosmicpython maps its domain errors at the entrypoint). A kind not listed
# answers its nearest listed ancestor's (InvalidToken: 401); any other Problem is a 500.
HTTP_STATUS: dict[type[Problem], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PreconditionFailed: 412,
    PayloadTooLarge: 413,
    Unprocessable: 422,
    PreconditionRequired: 428,
    TooManyRequests: 429,
    ServiceUnavailable: 503,
}


def http_status(problem: Problem) -> int:
    return next((HTTP_STATUS[kind] for kind in type(problem).__mro__ if kind in HTTP_STATUS), 500)


def problem_response(problem: Problem, request: Request | None = None) -> JSONResponse:
    status = http_status(problem)
    body = problem.body(request.url.path if request else None)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}  # a 401 says how to authenticate
    if problem.retry_after_s is not None:
        headers["Retry-After"] = str(problem.retry_after_s)
    return JSONResponse(
        # RFC 9457's order: status after title.
        {"type": body["type"], "title": body["title"], "status": status} | body,
        status_code=status,
        headers=headers,
        media_type=PROBLEM_JSON,
    )


async def _on_problem(request: Request, exc: Problem) -> JSONResponse:
    return problem_response(exc, request)


async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        problem: Problem = BadRequest("The request body is not valid JSON.", errors=errors)
    else:
        problem = Unprocessable("The request does not match the API contract; see `errors`.", errors=errors)
    return problem_response(problem, request)


async def _on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Errors raised by the framework itself (unknown path, wrong method)."""
    body = {
        "type": f"urn:orderflow:problem:http-{exc.status_code}",
        "title": str(exc.detail),
        "status": exc.status_code,
        "detail": str(exc.detail),
        "instance": request.url.path,
    }
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request.scope))
    return JSONResponse(body, status_code=exc.status_code, headers=headers, media_type=PROBLEM_JSON)


def _options_answer(scope: Scope, headers: dict, allowed: list[str]) -> Response:
    """204 with the path's methods; or, when the gateway asks on behalf of a method it
    refused itself (nginx answers TRACE on its own), the 405 problem for that method."""
    refused = headers.get(b"x-orderflow-method-not-allowed", b"").decode("latin-1")
    if not refused:
        return Response(status_code=204, headers={"Allow": ", ".join(allowed)})
    body = {
        "type": "urn:orderflow:problem:http-405",
        "title": "Method Not Allowed",
        "status": 405,
        "detail": f"{refused[:20]} is not allowed here; see Allow.",
        "instance": scope["path"],
    }
    return JSONResponse(body, status_code=405, headers={"Allow": ", ".join(allowed)}, media_type=PROBLEM_JSON)


def allowed_methods(scope: Scope) -> list[str]:
    """The methods the app answers at the request's path (HEAD wherever GET is, OPTIONS
    everywhere); empty when no route has that path."""
    methods: set[str] = set()
    for route in scope["app"].router.routes:
        route_methods = getattr(route, "methods", None)
        if route_methods and route.matches(scope)[0] != Match.NONE:
            methods |= route_methods
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods | {"OPTIONS"}) if methods else []


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(Problem("Something went wrong on our side; it has been logged."), request)


def replica_name() -> str | None:
    """This Serve replica's id (None outside a replica)."""
    from ray import serve

    try:
        return serve.get_replica_context().replica_tag
    except Exception:  # RayServeException: not running in a replica
        return None


def observe_replica(service: str, log_level: str) -> None:
    """A replica's JSON logs (with its id) and, when an OTLP endpoint is set, its spans."""
    replica = replica_name()
    configure_logging(service, log_level, replica=replica)
    configure_tracing(service, replica)


class RequestContext:
    """Pure ASGI middleware: request id in and out, the caller's trace continued (W3C
    `traceparent`, a new trace without one), HEAD as GET without the body, OPTIONS,
    `/<prefix>/` as the root route, body-size limit, metrics."""

    def __init__(self, app: ASGIApp, service: str, max_body: int = MAX_BODY_BYTES):
        self.app = app
        self.service = service
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        caller_id = headers.get(b"x-request-id", b"")
        request_id = caller_id.decode("ascii") if REQUEST_ID.fullmatch(caller_id) else uuid.uuid4().hex
        rid_token = request_id_var.set(request_id)
        oid_token = order_id_var.set(None)
        method = scope["method"]  # as asked: a HEAD is served below as a GET, and logged as a HEAD
        started = time.perf_counter()
        status = 500
        with continued(headers.get(b"traceparent"), scope["method"], kind=SpanKind.SERVER,
                       tracestate=headers.get(b"tracestate")) as span:
            is_head = scope["method"] == "HEAD"
            if is_head:  # answered as the GET it asks about, without the body
                scope = {**scope, "method": "GET"}
            root = scope.get("root_path", "")
            if root and scope["path"] == f"{root}/":  # `/orders/` is the root route, as `/orders` is
                scope = {**scope, "path": root, "raw_path": root.encode()}

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message.setdefault("headers", [])
                    message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode("ascii"))]
                elif is_head and message["type"] == "http.response.body":
                    message = {**message, "body": b""}
                await send(message)

            try:
                too_large, receive = await self._limit_body(headers, receive)
                if scope["method"] == "OPTIONS" and (allowed := allowed_methods(scope)):
                    await _options_answer(scope, headers, allowed)(scope, receive, send_with_id)
                elif too_large:
                    request = Request(scope)
                    await problem_response(
                        PayloadTooLarge(f"The request body is larger than {self.max_body} bytes."), request
                    )(scope, receive, send_with_id)
                else:
                    await self.app(scope, receive, send_with_id)
            finally:
                # The route's template (set by the router), never the raw path: ids would explode the labels.
                route = getattr(scope.get("route"), "path", "unmatched")
                observe_request(self.service, scope["method"], route, status, started)
                # One line per request, inside the span and with the request id still set, so it
                # carries request_id and trace_id like every other line of this request.
                duration_ms = round((time.perf_counter() - started) * 1000, 1)
                log.log(logging.DEBUG if route in PROBE_ROUTES else logging.INFO, "%s %s %d %.1f ms",
                        method, scope["path"], status, duration_ms,
                        extra={"method": method, "path": scope["path"],
                               "route": f"{root}{route}" if "route" in scope else route,
                               "status": status, "duration_ms": duration_ms})
                if span.is_recording():
                    span.update_name(f"{scope['method']} {scope.get('root_path', '')}{route}")
                    span.set_attribute("http.response.status_code", status)
                    span.set_attribute("orderflow.request_id", request_id)
                request_id_var.reset(rid_token)
                order_id_var.reset(oid_token)

    async def _limit_body(self, headers: dict, receive: Receive) -> tuple[bool, Receive]:
        length = headers.get(b"content-length")
        if length is not None:
            return (not length.isdigit() or int(length) > self.max_body), receive
        if b"chunked" not in headers.get(b"transfer-encoding", b""):
            return False, receive
        # Chunked body: read it up to the limit, then hand the same messages to the app.
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_body:
                return True, receive
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        return False, replay


Check = Callable[[], Awaitable[dict | None]]


class NotReady(Exception):
    """Raised by a readiness check; its message says why and is shown as it is."""


async def readiness(
    service: str, *, required: dict[str, Check], optional: dict[str, Check], timeout_s: float
) -> JSONResponse:
    """The answer of `/ready` (API.md, Every service). `required`: what the HTTP API needs;
    `optional`: what the service can do without for a while. 200 `ready` when all answer,
    200 `degraded` when only optional ones fail, 503 problem+json naming the required ones
    that fail. Each check: {status: ok | degraded | unavailable, required, detail?, ...what
    it measured}."""

    async def run(check: Check) -> dict:
        try:
            async with asyncio.timeout(timeout_s):
                return {"status": "ok", **((await check()) or {})}
        except NotReady as exc:
            return {"status": "failing", "detail": str(exc)}
        except TimeoutError:
            return {"status": "failing", "detail": f"no answer within {timeout_s:g}s"}
        except Exception as exc:  # any failure of a dependency means "not ok"; its text may hold addresses
            return {"status": "failing", "detail": exc.__class__.__name__}

    names = [*required, *optional]
    results = await asyncio.gather(*(run(c) for c in [*required.values(), *optional.values()]))
    checks: dict[str, dict] = {}
    for name, result in zip(names, results, strict=True):
        is_required = name in required
        if result["status"] == "failing":
            result["status"] = "unavailable" if is_required else "degraded"
        checks[name] = {"status": result.pop("status"), "required": is_required, **result}
        DEPENDENCY_UP.labels(service, name).set(1 if checks[name]["status"] == "ok" else 0)
    failing = [name for name in required if checks[name]["status"] != "ok"]
    READY.labels(service).set(0 if failing else 1)
    if failing:
        return JSONResponse(
            {
                "type": "urn:orderflow:problem:not-ready",
                "title": "Service not ready",
                "status": 503,
                "detail": f"{', '.join(failing)} unavailable",
                "service": service,
                "checks": checks,
            },
            status_code=503,
            media_type=PROBLEM_JSON,
        )
    degraded = any(check["status"] != "ok" for check in checks.values())
    return JSONResponse({"status": "degraded" if degraded else "ready", "service": service, "checks": checks})


def create_service_api(
    service: str, *, title: str, lifespan: Callable[[FastAPI], AbstractAsyncContextManager]
) -> FastAPI:
    # FastAPI's own /docs loads Swagger UI from a CDN; ours serves the swagger-ui-bundle
    # package's copy. ReDoc (CDN only) is off.
    api = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None)
    api.add_exception_handler(Problem, _on_problem)
    api.add_exception_handler(RequestValidationError, _on_validation_error)
    api.add_exception_handler(HTTPException, _on_http_error)
    api.add_exception_handler(Exception, _on_unexpected)
    api.add_middleware(RequestContext, service=service)
    api.openapi = lambda: openapi_with_errors(api, caller=current_user)  # type: ignore[method-assign]
    api.mount("/docs/static", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger-ui")

    @api.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> Response:
        # The app is mounted under its route prefix (/orders ...): every URL carries it.
        prefix = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{prefix}{api.openapi_url}",
            title=f"{title} - API",
            swagger_js_url=f"{prefix}/docs/static/swagger-ui-bundle.js",
            swagger_css_url=f"{prefix}/docs/static/swagger-ui.css",
            swagger_favicon_url=f"{prefix}/docs/static/favicon-32x32.png",
        )

    @api.get("/health", tags=["operations"], summary="Liveness: the process serves requests")
    async def health() -> dict:
        return {"status": "ok", "service": service}

    return api


def bearer_token(request: HTTPConnection) -> str | None:
    """The access token of the Authorization header; None without the header, 401 when it
    is not a bearer token."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("Send the access token as: Authorization: Bearer <token>.")
    return token.strip()


async def current_user(request: Request) -> Principal:
    """The caller: a guest without an Authorization header, else whoever the access token
    names (verified by the service's `app.state.verifier`); a bad token is a 401."""
    token = bearer_token(request)
    return GUEST if token is None else await request.app.state.verifier.verify(token)


CurrentUser = Annotated[Principal, Depends(current_user)]


def app_state(name: str) -> Callable[[Request], Any]:
    """A dependency handing a route what its app's lifespan keeps as `app.state.<name>`
    (the service of this replica)."""

    def from_app_state(request: Request) -> Any:
        return getattr(request.app.state, name)

    return from_app_state


async def signed_in_user(user: CurrentUser) -> Principal:
    return require_signed_in(user)


async def staff_user(user: CurrentUser) -> Principal:
    return require_roles(user, *STAFF)


async def admin_user(user: CurrentUser) -> Principal:
    return require_roles(user, "admin")


# What a route needs of its caller, declared in its signature (401 for a guest, 403 without
# the role), so the rule is read off the route and checked once per request.
SignedInUser = Annotated[Principal, Depends(signed_in_user)]
StaffUser = Annotated[Principal, Depends(staff_user)]
AdminUser = Annotated[Principal, Depends(admin_user)]


def create_verifier(settings: CommonSettings, redis) -> TokenVerifier:
    """How a service other than auth checks tokens: the auth service's JWKS, and sessions
    through Redis, falling back to asking the auth service."""
    return TokenVerifier(
        JwksKeySource(f"{settings.auth_url}/.well-known/jwks.json"),
        RedisSessionCheck(redis, fallback=AuthServiceSessionCheck(settings.auth_url),
                          namespace=settings.redis_namespace),
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
    )
