"""Settings of the notification service (prefix NOTIFY_, plus the shared ones)."""

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from actors.common.settings import CommonSettings, PostgresUrl

MIGRATIONS = Path(__file__).parent / "migrations"


class NotificationSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFY_", extra="ignore", populate_by_name=True)

    database_url: PostgresUrl = "postgresql://postgres@127.0.0.1:5432/notifications_db"
    db_pool_size: int = 10
    # Language of the messages: English or Polish.
    language: Literal["en", "pl"] = "en"

    # RabbitMQ: the durable queue bound to the `orders` exchange, and how it is consumed.
    queue: str = "notifications"
    prefetch: int = Field(32, ge=1, le=1000)
    # A message whose handling fails (other than the database being down, which is retried
    # in place) is retried after each of these delays, then moved to the dead-letter queue.
    retry_delays_s: list[float] = [1.0, 5.0, 30.0]
    run_consumer: bool = True

    # Webhook: the shared secret (HMAC-SHA256), given as it is or as a file that holds it
    # (a mounted secret, a local run's generated one), and how old a signature may be.
    webhook_secret: str = ""
    webhook_secret_file: Path | None = None
    webhook_tolerance_s: int = 300

    # WebSocket: heartbeat interval; how many pushes wait in a connection's queue (beyond
    # that, the connection reads them from the log); how long one send may wait before the
    # client is dropped as not reading.
    ws_heartbeat_s: float = 15.0
    ws_queue_size: int = Field(256, ge=1)
    ws_send_timeout_s: float = 5.0
    # An open WebSocket's token is checked again this often: when it has expired or its
    # session has ended (logout, a role change), the connection is closed with 4401.
    ws_token_recheck_s: float = Field(15.0, gt=0)
    # The fan-out wakes on LISTEN/NOTIFY; this poll is the fallback when one is missed.
    fanout_poll_s: float = 2.0
    # The log keeps this many days of notifications (agents catch up on hours, not months);
    # older ones are deleted once an hour.
    retention_days: int = Field(90, ge=1)

    @model_validator(mode="after")
    def _read_webhook_secret_file(self) -> "NotificationSettings":
        if self.webhook_secret_file and not self.webhook_secret:
            try:
                self.webhook_secret = self.webhook_secret_file.read_text().strip()
            except OSError as exc:
                raise ValueError(f"NOTIFY_WEBHOOK_SECRET_FILE {self.webhook_secret_file} cannot be read: {exc}") from None
        return self
