"""Errors as RFC 9457 problem details.

Services raise a `Problem` subclass; the HTTP layer turns it into
`application/problem+json` with a stable `type`. Nothing else ever reaches a client.
"""

from typing import Any, ClassVar

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:orderflow:problem:"


class Problem(Exception):
    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body = {
            "type": TYPE_PREFIX + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class BadRequest(Problem):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str, **extra):
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(Problem):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class Unprocessable(Problem):
    status, slug, title = 422, "validation-error", "Request is not valid"


class PreconditionRequired(Problem):
    status, slug, title = 428, "precondition-required", "Precondition required"


class TooManyRequests(Problem):
    status, slug, title = 429, "too-many-attempts", "Too many attempts"

    def __init__(self, detail: str, *, retry_after_s: int, **extra):
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)}, **extra)


class ServiceUnavailable(Problem):
    status, slug, title = 503, "dependency-unavailable", "A dependency is unavailable"

    def __init__(self, detail: str, *, retry_after_s: int = 2, **extra: Any):
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)}, **extra)
