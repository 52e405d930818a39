"""Who is making a request. Token verification and role guards build on `Principal`."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & {"admin", "warehouse"})


# Until the auth service issues tokens, every caller is an unauthenticated guest.
GUEST = Principal(subject="guest")
