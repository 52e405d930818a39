"""Agent settings (prefix ORDERFLOW_AGENT_), with the command line able to override them."""

import os
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _xdg(name: str, fallback: str) -> Path:
    return Path(os.environ.get(name) or Path.home() / fallback) / "orderflow"


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERFLOW_AGENT_", extra="ignore")

    # The gateway (the same address the admin panel is on).
    server: str = "http://127.0.0.1:8088"
    # Staff credentials; without them the refresh token saved by `orderflow-agent login` is used.
    email: str | None = None
    password: str | None = None
    config_dir: Path = Field(default_factory=lambda: _xdg("XDG_CONFIG_HOME", ".config"))
    log_file: Path = Field(default_factory=lambda: _xdg("XDG_STATE_HOME", ".local/state") / "agent.log")
    app_name: str = "Orderflow"
    # Reconnect back-off, and how long a silent connection (no notification, no heartbeat)
    # is trusted before it is replaced. A connection that stayed up for `reconnect_stable_s`
    # was healthy: when it goes, the back-off starts over from `reconnect_initial_s`.
    reconnect_initial_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)
    reconnect_stable_s: float = Field(10.0, ge=0)
    silence_timeout_s: float = 45.0
    request_timeout_s: float = 10.0

    @field_validator("server")
    @classmethod
    def _an_http_address(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("the server must be the gateway's address, e.g. https://shop.example.com")
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _back_off_grows(self) -> "AgentSettings":
        if self.reconnect_initial_s > self.reconnect_max_s:
            raise ValueError("ORDERFLOW_AGENT_RECONNECT_INITIAL_S must not be above ORDERFLOW_AGENT_RECONNECT_MAX_S")
        return self

    @property
    def ws_url(self) -> str:
        base = self.server.rstrip("/")
        scheme, _, rest = base.partition("://")
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/notifications/ws"
