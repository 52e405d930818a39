"""The browser's session (issue 12), without HTTP: the refresh token lives in an HttpOnly
cookie only `/auth/session*` receives, the access token in the page's memory. Because a
browser sends that cookie by itself, every request that uses it must prove it comes from our
own pages (a header a cross-site form cannot send, and the Origin, when there is one, ours).
The sign-in, refresh and logout rules are AuthService's, the same as for POST /auth/login."""

from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import BaseModel

from actors.auth.domain import TokenPair
from actors.common.errors import Forbidden, Unauthorized

REFRESH_COOKIE = "orderflow_refresh"
COOKIE_PATH = "/auth/session"
CSRF_HEADER = "X-Orderflow-CSRF"
CSRF_VALUE = "1"
DEFAULT_PORTS = {"http": 80, "https": 443}

NO_SESSION = "This browser has no session; sign in."


class CrossSiteRequest(Forbidden):
    slug, title = "csrf", "Cross-site request refused"


class AccessToken(BaseModel):
    """What a page gets: the access token, to keep in memory (the refresh token is the cookie's)."""
    access_token: str
    token_type: str = "bearer"
    expires_in: int

    @classmethod
    def of(cls, pair: TokenPair) -> "AccessToken":
        return cls(access_token=pair.access_token, token_type=pair.token_type, expires_in=pair.expires_in)


@dataclass(frozen=True)
class RefreshCookie:
    """The cookie that holds a session's refresh token; an empty `value` with `max_age` 0
    clears it. `secure` when the page came over TLS (a plain-HTTP page could not send it back)."""
    value: str
    max_age: int
    secure: bool
    name = REFRESH_COOKIE
    path = COOKIE_PATH
    http_only = True
    same_site = "Strict"

    @classmethod
    def cleared(cls, secure: bool) -> "RefreshCookie":
        return cls(value="", max_age=0, secure=secure)


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin or URL, the port filled in; None when it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def check_same_origin(csrf: str | None, origin: str | None, scheme: str, host: str | None) -> None:
    """A cookie-carrying request is ours when it sends `X-Orderflow-CSRF: 1` (a cross-site
    form cannot, and a cross-site fetch with it needs a CORS preflight nobody answers) and,
    if it names an Origin, that is the origin the request was sent to (`scheme`, `host`: the
    Host the client asked for, with its port)."""
    if csrf != CSRF_VALUE:
        raise CrossSiteRequest(f"Send the header {CSRF_HEADER}: {CSRF_VALUE} with every /auth/session request.")
    if origin is not None:
        own = _origin(f"{scheme}://{host}") if host else None
        if own is None or _origin(origin) != own:
            raise CrossSiteRequest("This request comes from another site's page; it is refused.")


def require_cookie(value: str | None) -> str:
    if not value:
        raise Unauthorized(NO_SESSION)
    return value
