"""Settings of the analytics service (prefix ANALYTICS_, plus the shared ones)."""

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from actors.analytics.scheduler import parse_schedules
from actors.common.settings import CommonSettings, shared


class AnalyticsSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="ANALYTICS_", extra="ignore", populate_by_name=True)

    sync_interval_s: float = Field(5.0, gt=0)
    sync_page_size: int = 1000
    # Each refresh re-reads changes this far behind the newest one it has seen: a
    # transaction that stamped updated_at earlier but committed later is still picked up.
    sync_overlap_s: float = 5.0
    # The frame's copy in Redis, refreshed at most this often, read by a replica that starts.
    snapshot_interval_s: float = 60.0
    snapshot_timeout_s: float = 30.0
    stats_cache_ttl_s: int = 600
    # `[period=]cron` entries separated by ';', e.g. "hour=0 * * * *; day=0 6 * * *"; a
    # period is hour, day, week or month (day when left out).
    report_cron: str = "day=0 6 * * *"
    report_keep_days: int = 30
    # A replica that took a tick but died before finishing frees it after this long.
    report_lease_s: int = 300
    run_scheduler: bool = True
    reports_dir: Path = shared("REPORTS_DIR", Path("./reports"))

    @field_validator("report_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        parse_schedules(value)
        return value
