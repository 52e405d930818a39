"""Settings of the orders service (prefix ORDERS_, plus the shared ones)."""

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from actors.common.settings import CommonSettings, PostgresUrl

MIGRATIONS = Path(__file__).parent / "migrations"


class OrdersSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore", populate_by_name=True)

    database_url: PostgresUrl = "postgresql://postgres@127.0.0.1:5432/orders_db"
    db_pool_size: int = 10
    # The relay wakes on LISTEN/NOTIFY; this poll is the fallback when a notification is missed.
    relay_poll_s: float = 2.0
    relay_batch_size: int = 200
    # Published outbox rows are kept this long for audit and replay, then pruned.
    outbox_retention_days: int = 7
    run_relay: bool = True
