"""Settings shared by every service; each service extends them with its own prefix.

Shared names are read without a prefix (AMQP_URL, REDIS_URL, ...); a service's own
names carry its prefix (ORDERS_DATABASE_URL, ...). Defaults work on a machine where
PostgreSQL, Redis and RabbitMQ listen on their standard ports.
"""

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def shared(name: str, default):
    """A field read from an environment variable without the service's prefix."""
    return Field(default, validation_alias=AliasChoices(name, name.lower()))


def _url_of(*schemes: str, needs_path: bool = False):
    """A validator of a server URL: one of `schemes`, a port that is a number, and (for
    databases) a database name, so a typo is named at start instead of "does not answer"."""

    def check(value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes:
            raise ValueError(f"must start with {' or '.join(s + '://' for s in schemes)}")
        try:
            parts.port  # noqa: B018 (raises on a port that is not a number in range)
        except ValueError:
            raise ValueError("its port is not a number from 0 to 65535") from None
        if needs_path and not parts.path.strip("/"):
            raise ValueError("names no database (e.g. .../orders_db)")
        return value

    return AfterValidator(check)


PostgresUrl = Annotated[str, _url_of("postgresql", "postgres", needs_path=True)]
RedisUrl = Annotated[str, _url_of("redis", "rediss", "unix")]
AmqpUrl = Annotated[str, _url_of("amqp", "amqps")]


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    amqp_url: AmqpUrl = shared("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    redis_url: RedisUrl = shared("REDIS_URL", "redis://127.0.0.1:6379/0")
    # Every Redis key starts with it, so two deployments (or test runs) can share a Redis.
    redis_namespace: str = shared("REDIS_NAMESPACE", "orderflow")
    events_exchange: str = shared("EVENTS_EXCHANGE", "orders")
    public_url: str = shared("PUBLIC_URL", "http://127.0.0.1:8088")
    log_level: str = shared("LOG_LEVEL", "INFO")
    # Tokens: who issues them, for whom, and where every service finds the public keys.
    auth_issuer: str = shared("AUTH_ISSUER", "orderflow-auth")
    auth_audience: str = shared("AUTH_AUDIENCE", "orderflow")
    auth_url: str = shared("AUTH_URL", "http://127.0.0.1:8000/auth")
    # The Serve application of the orders service, which auth and analytics call through a handle.
    orders_app: str = shared("ORDERS_APP", "orders")
    # Upper bound for any single dependency call made while serving a request, so a dead
    # database or broker turns into a 503 quickly instead of a hung client.
    dependency_timeout_s: float = shared("DEPENDENCY_TIMEOUT_S", 1.5)
