"""Errors as RFC 9457 problem details, without HTTP.

Services raise a `Problem` subclass: its class is the kind of failure (not found, conflict,
too many attempts ...), `slug` and `title` name it for clients, `detail` and `extra` tell
this occurrence. The HTTP edge (deployments/http.py) answers each kind with its status as
`application/problem+json`, with a stable `type`. Nothing else ever reaches a client.
"""

from typing import Any, ClassVar

TYPE_PREFIX = "urn:orderflow:problem:"


class Problem(Exception):
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"
    # When trying again may succeed (a lockout's end, a dependency back); None: no hint.
    retry_after_s: int | None = None

    def __init__(self, detail: str, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """Its problem details members but `status`, which the HTTP edge adds."""
        body = {"type": TYPE_PREFIX + self.slug, "title": self.title, "detail": self.detail}
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class BadRequest(Problem):
    slug, title = "bad-request", "Bad request"


class Unauthorized(Problem):
    slug, title = "unauthorized", "Authentication required"


class Forbidden(Problem):
    slug, title = "forbidden", "Not allowed"


class NotFound(Problem):
    slug, title = "not-found", "Not found"


class Conflict(Problem):
    slug, title = "conflict", "Conflict"


class PreconditionFailed(Problem):
    slug, title = "precondition-failed", "Precondition failed"


class PayloadTooLarge(Problem):
    slug, title = "payload-too-large", "Payload too large"


class Unprocessable(Problem):
    slug, title = "validation-error", "Request is not valid"


class PreconditionRequired(Problem):
    slug, title = "precondition-required", "Precondition required"


class TooManyRequests(Problem):
    slug, title = "too-many-attempts", "Too many attempts"

    def __init__(self, detail: str, *, retry_after_s: int, **extra: Any):
        super().__init__(detail, **extra)
        self.retry_after_s = retry_after_s


class ServiceUnavailable(Problem):
    slug, title = "dependency-unavailable", "A dependency is unavailable"

    def __init__(self, detail: str, *, retry_after_s: int = 2, **extra: Any):
        super().__init__(detail, **extra)
        self.retry_after_s = retry_after_s
