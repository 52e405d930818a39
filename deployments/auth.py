"""The auth service over HTTP (API.md, Auth) and its Ray Serve deployment."""

import contextlib
import uuid
from functools import partial
from typing import Annotated

from fastapi import Body, Cookie, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from ray import serve
from ray.serve import Application

from actors.auth.browser import (
    CSRF_HEADER,
    CSRF_VALUE,
    REFRESH_COOKIE,
    AccessToken,
    RefreshCookie,
    check_same_origin,
    require_cookie,
)
from actors.auth.domain import (
    EmailLink,
    OrderClaim,
    OrderLogin,
    PasswordReset,
    PasswordResetRequest,
    Registration,
    RefreshRequest,
    RolesUpdate,
    StaffLogin,
    TokenPair,
    User,
)
from actors.auth.mail import MailOutbox, SmtpSender
from actors.auth.keys import SigningKeys
from actors.auth.service import AuthService
from actors.auth.settings import MIGRATIONS, AuthSettings
from actors.common.db import create_pool, migrate
from actors.common.errors import NotFound, Unauthorized
from actors.common.redis import create_redis
from actors.common.security import RedisSessionCheck, TokenVerifier
from deployments.http import (
    AdminUser,
    NotReady,
    SignedInUser,
    app_state,
    create_service_api,
    observe_replica,
    problem_response,
    readiness,
)
from deployments.metrics import MonitoredReplica
from deployments.openapi import problems


async def find_order_through_serve(orders_app: str, number: str, email: str) -> uuid.UUID | None:
    """Ask the orders application through a Serve handle: a call inside the cluster, not
    an HTTP route anyone outside could use to probe order numbers."""
    handle = serve.get_app_handle(orders_app)
    found = await handle.find_order_id.remote(number, email)
    return uuid.UUID(found) if found else None


async def claim_order_through_serve(orders_app: str, number: str, email: str,
                                    account_id: uuid.UUID) -> uuid.UUID | None:
    handle = serve.get_app_handle(orders_app)
    claimed = await handle.claim_order.remote(number, email, str(account_id))
    return uuid.UUID(claimed) if claimed else None


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    settings = AuthSettings()
    observe_replica("auth", settings.log_level)
    keys = SigningKeys.from_settings(settings)
    await migrate(settings.database_url, MIGRATIONS)
    pool = await create_pool(settings.database_url, max_size=settings.db_pool_size,
                             timeout_s=settings.dependency_timeout_s)
    redis = create_redis(settings.redis_url)
    auth = AuthService(pool, redis, keys, settings, partial(find_order_through_serve, settings.orders_app),
                       partial(claim_order_through_serve, settings.orders_app))
    mail = MailOutbox(pool, SmtpSender(settings), wake=auth.mail_queued, poll_s=settings.mail_poll_s,
                      max_backoff_s=settings.mail_retry_max_s)
    mail.start()
    app.state.mail = mail
    await auth.bootstrap_admin()
    app.state.auth = auth
    app.state.redis = redis
    app.state.verifier = TokenVerifier(
        keys, RedisSessionCheck(redis, fallback=auth, namespace=settings.redis_namespace), issuer=settings.auth_issuer, audience=settings.auth_audience
    )
    housekeeping = auth.housekeeping_loop()
    housekeeping.start()
    try:
        yield
    finally:
        await housekeeping.stop()
        await auth.finish_background()
        await mail.stop()
        await redis.aclose()
        await pool.close()


api = create_service_api("auth", title="Orderflow auth", lifespan=lifespan)


Auth = Annotated[AuthService, Depends(app_state("auth"))]


def forwarded(request: Request, header: str) -> str | None:
    """The (first) value of a header the gateway sets about the client, when the service
    trusts the gateway's headers."""
    if request.app.state.auth.settings.trust_proxy_headers and (value := request.headers.get(header)):
        return value.split(",")[0].strip()
    return None


def client_address(request: Request) -> str:
    return forwarded(request, "x-real-ip") or (request.client.host if request.client else "unknown")


def client_scheme(request: Request) -> str:
    return (forwarded(request, "x-forwarded-proto") or request.url.scheme).lower()


@api.get("/ready", tags=["operations"], summary="Readiness: PostgreSQL answers; Redis is reported")
async def ready(request: Request, auth: Auth) -> JSONResponse:
    """Ready when PostgreSQL answers. Degraded without Redis (sessions and revocations are
    read from PostgreSQL meanwhile) and without SMTP (mail waits in the outbox)."""

    async def redis_check():
        await request.app.state.redis.ping()

    async def database_check():
        await auth.is_revoked(str(uuid.uuid4()))

    async def smtp_check() -> dict:
        if not request.app.state.mail.smtp_ok:
            raise NotReady("the SMTP server does not take mail; it waits in the outbox")
        return {"mail_waiting": await auth.mail_waiting()}

    return await readiness("auth", required={"postgresql": database_check},
                           optional={"redis": redis_check, "smtp": smtp_check},
                           timeout_s=auth.settings.dependency_timeout_s)


@api.get("/.well-known/jwks.json", summary="Public keys that verify access tokens")
async def jwks(request: Request, response: Response) -> dict:
    response.headers["Cache-Control"] = "public, max-age=300"
    return request.app.state.auth.keys.jwks


class Accepted(BaseModel):
    detail: str


REGISTERED = Accepted(detail="Thank you. We sent a message to this address; follow it to confirm the address.")
RESET_REQUESTED = Accepted(detail="If this address has an account, we sent it a link to choose a new password.")


class EmailVerified(BaseModel):
    email: str
    email_verified: bool


class ClaimedOrder(BaseModel):
    order_id: uuid.UUID
    order_number: str


@api.post("/register", status_code=202, response_model=Accepted,
          summary="Register a customer account (the same answer whether or not the address has one)")
async def register(registration: Registration, auth: Auth) -> Accepted:
    await auth.register(registration)
    return REGISTERED


@api.post("/verify-email", response_model=EmailVerified, responses=problems(400),
          summary="Prove the address with the mailed link's token")
async def verify_email(body: EmailLink, auth: Auth) -> EmailVerified:
    return EmailVerified(**await auth.verify_email(body.token))


@api.post("/password-reset", status_code=202, response_model=Accepted, summary="Mail a password-reset link")
async def password_reset(body: PasswordResetRequest, auth: Auth) -> Accepted:
    await auth.request_password_reset(str(body.email))
    return RESET_REQUESTED


@api.post("/password-reset/confirm", status_code=204, responses=problems(400),
          summary="Set a new password; every session ends")
async def password_reset_confirm(body: PasswordReset, auth: Auth) -> Response:
    await auth.reset_password(body)
    return Response(status_code=204)


@api.post("/claim-order", response_model=ClaimedOrder, responses=problems(429),
          summary="Make an order the signed-in account's, with its number and email")
async def claim_order(request: Request, body: OrderClaim, user: SignedInUser, auth: Auth) -> ClaimedOrder:
    return ClaimedOrder(**await auth.claim_order(user, body, client_address(request)))


def no_store(response: Response) -> None:
    """A response carrying tokens must not be kept by any cache (RFC 6749 section 5.1)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"


@api.post("/login", response_model=TokenPair, dependencies=[Depends(no_store)], responses=problems(401, 429),
          summary="Log in with email and password, or order number and email")
async def login(request: Request, auth: Auth, credentials: Annotated[StaffLogin | OrderLogin, Body()]) -> TokenPair:
    return await auth.sign_in(credentials, client_address(request))


@api.post("/refresh", response_model=TokenPair, dependencies=[Depends(no_store)], responses=problems(401),
          summary="Trade a refresh token for a new pair")
async def refresh(body: RefreshRequest, auth: Auth) -> TokenPair:
    return await auth.refresh(body.refresh_token)


@api.post("/logout", status_code=204, summary="End this session everywhere")
async def logout(user: SignedInUser, auth: Auth) -> Response:
    await auth.logout(user)
    return Response(status_code=204)


# --- the browser's session: the refresh token in an HttpOnly cookie (actors/auth/browser.py) ---

CSRF_PARAMETER = {"openapi_extra": {"parameters": [{
    "name": CSRF_HEADER, "in": "header", "required": True, "schema": {"type": "string", "enum": [CSRF_VALUE]},
    "description": "Proves the request comes from a page of this site (without it: 403). An Origin "
                   "header, when sent, must be this site's origin as well."}]}}
SessionCookie = Annotated[str | None, Cookie(
    alias=REFRESH_COOKIE, description="The session's refresh token, set by POST /auth/session (HttpOnly, "
                                      "SameSite=Strict, Path=/auth/session)")]


async def same_origin(request: Request) -> None:
    host = forwarded(request, "x-forwarded-host") or request.headers.get("host")
    check_same_origin(request.headers.get(CSRF_HEADER), request.headers.get("origin"), client_scheme(request), host)


def set_refresh_cookie(request: Request, response: Response, refresh_token: str | None) -> None:
    """The session's cookie set to `refresh_token`, or cleared (None)."""
    secure = client_scheme(request) == "https"
    cookie = (RefreshCookie(refresh_token, request.app.state.auth.settings.refresh_token_ttl_s, secure)
              if refresh_token else RefreshCookie.cleared(secure))
    response.set_cookie(cookie.name, cookie.value, max_age=cookie.max_age, path=cookie.path, secure=cookie.secure,
                        httponly=cookie.http_only, samesite=cookie.same_site)


BROWSER = {"dependencies": [Depends(no_store), Depends(same_origin)], **CSRF_PARAMETER}


def sets_cookie(status: int, what: str) -> dict:
    return {status: {"headers": {"Set-Cookie": {"description": what, "schema": {"type": "string"}}}}}


SETS_SESSION = sets_cookie(200, f"{REFRESH_COOKIE}=<refresh token>; HttpOnly; SameSite=Strict; Path=/auth/session; "
                                "Max-Age=<refresh token lifetime> (and Secure over TLS)")


@api.post("/session", response_model=AccessToken, responses=problems(401, 403, 429) | SETS_SESSION, **BROWSER,
          summary="Sign a browser in (as POST /login); the refresh token goes into an HttpOnly cookie")
async def session_login(request: Request, response: Response, auth: Auth,
                        credentials: Annotated[StaffLogin | OrderLogin, Body()]) -> AccessToken:
    pair = await auth.sign_in(credentials, client_address(request))
    set_refresh_cookie(request, response, pair.refresh_token)
    return AccessToken.of(pair)


@api.post("/session/refresh", response_model=AccessToken, responses=problems(401, 403) | SETS_SESSION, **BROWSER,
          summary="A new access token for the browser's session; the cookie is rotated (401: signed out, "
                  "the cookie is cleared)")
async def session_refresh(request: Request, response: Response, auth: Auth,
                          refresh_token: SessionCookie = None) -> AccessToken | Response:
    try:
        pair = await auth.refresh(require_cookie(refresh_token))
    except Unauthorized as problem:
        answer = problem_response(problem, request)
        no_store(answer)
        set_refresh_cookie(request, answer, None)
        return answer
    set_refresh_cookie(request, response, pair.refresh_token)
    return AccessToken.of(pair)


@api.post("/session/logout", status_code=204, **BROWSER,
          responses=problems(403) | sets_cookie(204, f"{REFRESH_COOKIE}=; Max-Age=0 (the cookie cleared)"),
          summary="End the browser's session (its access tokens stop working) and clear the cookie")
async def session_logout(request: Request, auth: Auth, refresh_token: SessionCookie = None) -> Response:
    if refresh_token:
        await auth.logout_refresh_token(refresh_token)
    response = Response(status_code=204)
    set_refresh_cookie(request, response, None)
    return response


class Me(BaseModel):
    """The caller: an account (id, name, email_verified), or a customer signed in with an
    order's number and email (order_id, order_number)."""
    roles: list[str]
    email: str
    id: uuid.UUID | None = None
    name: str | None = None
    email_verified: bool | None = None
    order_id: uuid.UUID | None = None
    order_number: str | None = None


class Roles(BaseModel):
    roles: list[str]


@api.get("/me", response_model=Me, response_model_exclude_none=True, summary="Who the token belongs to")
async def me(user: SignedInUser, auth: Auth) -> dict:
    return await auth.me(user)


@api.get("/users", response_model=list[User], summary="All accounts (admin)")
async def users(admin: AdminUser, auth: Auth) -> list[User]:
    return await auth.users()


def _user_id(user_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(user_id)
    except ValueError:
        raise NotFound(f"No user with id {user_id}.") from None


@api.get("/users/{user_id}/roles", response_model=Roles, summary="A user's roles (admin)")
async def get_roles(user_id: str, admin: AdminUser, auth: Auth) -> dict:
    return {"roles": await auth.roles(_user_id(user_id))}


@api.put("/users/{user_id}/roles", response_model=Roles,
         summary="Replace a user's roles (admin); their sessions end")
async def put_roles(user_id: str, update: RolesUpdate, admin: AdminUser, auth: Auth) -> dict:
    return {"roles": await auth.set_roles(_user_id(user_id), update.roles)}


@serve.deployment
@serve.ingress(api)
class AuthDeployment(MonitoredReplica):
    """One replica of the auth API; its scaling is declared in serve_config.yaml."""


def build_app(args: dict | None = None) -> Application:
    return AuthDeployment.bind()
