"""Settings of the auth service (prefix AUTH_, plus the shared ones)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from actors.common.settings import CommonSettings, PostgresUrl

MIGRATIONS = Path(__file__).parent / "migrations"


class AuthSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore", populate_by_name=True)

    database_url: PostgresUrl = "postgresql://postgres@127.0.0.1:5432/auth_db"
    db_pool_size: int = 10
    # The Ed25519 private key that signs access tokens: PEM text, or a file holding it.
    signing_key: str | None = None
    signing_key_file: Path | None = None
    # A second public key (PEM file) published in the JWKS during a key rotation.
    previous_public_key_file: Path | None = None
    access_token_ttl_s: int = 15 * 60
    refresh_token_ttl_s: int = 30 * 24 * 3600
    # A retry of the same refresh within this many seconds, before the new refresh token was
    # used, gets the same new pair (its answer was lost); any other reuse ends the session.
    refresh_grace_s: float = Field(10, ge=0)
    bcrypt_rounds: int = 12
    # bcrypt hashes at once per replica; more wait their turn, so a flood of logins takes
    # this many cores at most and leaves the rest to the requests that need microseconds.
    max_concurrent_hashes: int = Field(1, ge=1)
    # Brute force (actors/auth/lockout.py): per account, this many consecutive failures lock
    # it for lockout_delay_s, doubling with each further lock up to lockout_max_delay_s; the
    # count and the lock level are forgotten after lockout_window_s without a failure.
    lockout_attempts: int = Field(5, ge=1)
    lockout_delay_s: float = Field(60, gt=0)
    lockout_max_delay_s: float = Field(15 * 60, gt=0)
    lockout_window_s: int = Field(24 * 3600, ge=1)
    # Per client address: past this many failures in address_window_s its failing attempts
    # are answered 429 after address_delay_s (a correct password still succeeds).
    address_failures: int = Field(100, ge=1)
    address_window_s: int = Field(15 * 60, ge=1)
    address_delay_s: float = Field(1.0, ge=0)
    # Behind the gateway the client's address comes from X-Real-IP, which nginx sets.
    trust_proxy_headers: bool = True
    # Links e-mailed for proving an address and for a password reset (PUBLIC_URL-based).
    email_verification_ttl_s: int = Field(48 * 3600, gt=0)
    password_reset_ttl_s: int = Field(3600, gt=0)
    # Outgoing mail (verification, reset). `make run` points these at its local mail sink.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(25, gt=0, lt=65536)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_from: str = "Orderflow <no-reply@orderflow.example.com>"
    smtp_timeout_s: float = Field(10, gt=0)
    # The mail outbox is sent at once; while SMTP fails it retries with a doubling delay up to
    # mail_retry_max_s, and looks for mail queued by other replicas every mail_poll_s.
    mail_poll_s: float = Field(5, gt=0)
    # At most this many mails to one address per mail_window_s (register and password reset
    # answer the same either way), so nobody can flood a mailbox through them.
    mail_per_address: int = Field(5, ge=1)
    mail_window_s: int = Field(3600, ge=1)
    mail_retry_max_s: float = Field(300, gt=0)
    bootstrap_admin_email: str | None = None
    bootstrap_admin_password: str | None = None
    bootstrap_admin_name: str = "Administrator"
