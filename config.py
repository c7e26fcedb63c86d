"""The one settings class. Every value has an embedded default, so a fresh clone runs with none set.

Environment variables use the ``HCP_`` prefix (``HCP_DATABASE_URL``...), and a ``.env`` file is read too.
"""

from __future__ import annotations

import secrets
import shutil
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent


def _venv_binary(name: str) -> str:
    """The path of a binary installed by a wheel into the running interpreter's environment."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    return found or str(candidate)


class Settings(BaseSettings):
    """Runtime configuration for the API, the worker and the dev stack."""

    model_config = SettingsConfigDict(env_prefix="HCP_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=PROJECT_ROOT / "data", description="Where the SQLite file, mail and Temporal DB live."
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL. Empty means the SQLite file data/hcp.db. PostgreSQL: postgresql+psycopg://user@host/db",
    )
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "hcp-cases"
    workflow_id_prefix: str = Field(
        default="", max_length=40, description="Prefix of case workflow ids, for deployments sharing one namespace"
    )
    temporal_ui_port: int = 8233
    temporal_cli_path: str = Field(default_factory=lambda: _venv_binary("temporal"))
    temporal_test_server_path: str = Field(default_factory=lambda: _venv_binary("temporal-test-server"))
    temporal_start_timeout_seconds: float = Field(
        default=2.0,
        description="How long rating intake waits for Temporal before leaving the case to the outbox relay.",
    )

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_base_url: str = "http://127.0.0.1:8000"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_use_tls: bool = False
    mail_from: str = "好差评系统 <noreply@hcp.localhost>"

    secret_key: str = Field(default="", description="Signs login tokens. Empty: a random key kept in data/secret_key.")
    pii_keys: str = Field(
        default="",
        description="Fernet keys for rater PII, comma-separated, newest first. Empty: one kept in data/pii_key.",
    )
    access_token_minutes: int = 60
    page_session_minutes: int = Field(
        default=480, ge=5, description="How long a staff member stays signed in to the pages (a working day)"
    )
    cookie_secure: bool | None = Field(
        default=None,
        description="Send page cookies over HTTPS only. Empty: yes when public_base_url is https (not in development)",
    )
    login_max_failures: int = Field(default=5, ge=1, description="Consecutive wrong passwords before a lock")
    login_lock_minutes: int = Field(default=15, ge=1, description="How long a locked account stays locked")
    public_rate_limit_per_minute: int = Field(
        default=60, ge=1, description="Requests per client per minute on public routes (login, rater pages)"
    )
    device_heartbeat_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Window rating devices send a heartbeat this often; one silent for 2.5 intervals is dropped",
    )
    request_body_max_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest request body accepted; a larger one is refused with 413"
    )

    # The worker's shutdown and probes (docs/operations.md, "Health, readiness and shutdown").
    worker_shutdown_grace_seconds: float = Field(
        default=10.0, ge=0, description="On SIGTERM: how long running activities and relay sends may take to finish"
    )
    worker_health_port: int = Field(
        default=0, ge=0, le=65535, description="Serve the worker's /healthz and /readyz on this port; 0: no listener"
    )
    worker_health_host: str = Field(default="127.0.0.1", description="Address of the worker's probe listener")

    outbox_relay_interval_seconds: float = 2.0
    notice_relay_interval_seconds: float = Field(
        default=1.0, gt=0, description="How often the worker looks for notices to send (it is also woken at once)"
    )
    notice_relay_concurrency: int = Field(
        default=8, ge=1, le=64, description="How many notices one worker sends at the same time"
    )
    notice_lease_seconds: float = Field(
        default=60.0, gt=0, description="How long a worker holds a notice it is sending before another may retry it"
    )
    office_hours_enforced: bool = Field(
        default=True,
        description="Hold reminders and escalations to staff until the unit's office hours (per policy profile)",
    )
    case_action_wait_seconds: float = Field(
        default=5.0,
        gt=1,
        description="How long a case action waits for the workflow to take the step before answering 503 or 202",
    )

    # The rating sweep (docs/operations.md): default ratings and invitations to unrated raters, from a Schedule.
    rating_sweep_interval_seconds: float = Field(
        default=300.0, ge=1, description="How often the worker's Temporal Schedule runs the rating sweep"
    )
    rating_sweep_batch_size: int = Field(
        default=500, ge=1, le=5000, description="Records per sweep batch (one activity, one transaction)"
    )
    rating_invitation_quiet_hours: str = Field(
        default="21:00-08:00",
        pattern=r"^(\s*|\d{2}:\d{2}-\d{2}:\d{2})$",
        description="China time when no invitation is sent (one queued then waits until it ends); empty: none",
    )
    rating_default_lookback_days: int = Field(
        default=30, ge=1, le=366, description="Default ratings: records whose moment passed longer ago are left alone"
    )

    # Retention of raters' personal data (docs/retention.md): anonymised by a scheduled job.
    retention_days: int = Field(
        default=1095, ge=30, description="A rater's personal data is anonymised this long after their case closed"
    )
    retention_uncased_days: int = Field(
        default=365,
        ge=30,
        description="... this long after a rating without a case; and an applicant's contact this long after "
        "the record's rating window closed",
    )
    retention_interval_seconds: float = Field(
        default=86400.0, ge=60, description="How often the worker's Temporal Schedule runs the retention job"
    )
    retention_batch_size: int = Field(
        default=200, ge=1, le=5000, description="Ratings or records per retention batch (one activity, one transaction)"
    )

    # The indicator rollup (docs/indicators.md): refreshed by the worker, read by reports while it is fresh.
    indicator_rollup_refresh_seconds: float = Field(
        default=30.0, ge=0, description="How often the worker refreshes the indicator rollup (PostgreSQL); 0: never"
    )
    indicator_rollup_max_age_seconds: float = Field(
        default=120.0,
        gt=0,
        description="Reports read the rollup only when it was refreshed at most this long ago, else the raw tables",
    )

    # Upstream reporting to the provincial or national 好差评 platform (docs/upstream.md).
    upstream_url: str = Field(
        default="", description="Where ratings and case results are pushed (POST, JSON). Empty: reporting off"
    )
    upstream_token: str = Field(default="", description="Sent as Authorization: Bearer; empty sends none")
    upstream_timeout_seconds: float = Field(default=10.0, gt=0, description="How long one push may take")
    upstream_max_attempts: int = Field(default=8, ge=1, le=50, description="Failed attempts before a dead letter")
    upstream_backoff_seconds: float = Field(default=2.0, gt=0, description="Wait after the first failure; doubles")
    upstream_backoff_max_seconds: float = Field(default=600.0, gt=0, description="Longest wait between attempts")
    upstream_relay_interval_seconds: float = Field(default=2.0, gt=0, description="How often the worker looks")
    upstream_relay_concurrency: int = Field(default=8, ge=1, le=64, description="Pushes one worker sends at once")
    upstream_lease_seconds: float = Field(
        default=60.0, gt=0, description="How long a worker holds a push it is sending before another may retry it"
    )
    upstream_level_codes: Literal["gbt39046", "ascending"] = Field(
        default="gbt39046",
        description="满意度代码 the platform takes: GB/T 39046 (1 非常满意 … 5 非常不满意) or ascending (1 非常不满意 …)",
    )

    # Metrics, logs and traces (docs/operations.md, "Metrics, logs and traces").
    metrics_token: str = Field(
        default="", description="Bearer token Prometheus sends to /metrics. Empty: /metrics answers loopback only"
    )
    metrics_cache_seconds: float = Field(
        default=10.0, ge=0, description="How long /metrics reuses the case, notice and push counts it read"
    )
    worker_metrics_address: str = Field(
        default="", description="host:port where the worker serves the Temporal SDK's Prometheus metrics; empty: off"
    )
    log_format: Literal["text", "json"] = Field(default="text", description="json: one JSON object per log line")
    otel_endpoint: str = Field(
        default="", description="Traces to an OTLP/HTTP URL (…/v1/traces), or to stderr with console; empty: off"
    )

    @property
    def upstream_enabled(self) -> bool:
        """Reporting is on when an upstream URL is set."""
        return bool(self.upstream_url.strip())

    @property
    def sqlalchemy_url(self) -> str:
        """The synchronous URL (Alembic, scripts)."""
        return self.database_url or f"sqlite:///{self.data_dir / 'hcp.db'}"

    @property
    def async_sqlalchemy_url(self) -> str:
        """The asyncio URL used by the API and the activities."""
        url = self.sqlalchemy_url
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
        if url.startswith("postgresql://"):
            return "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return url

    @property
    def cookies_secure(self) -> bool:
        """Whether page cookies carry the Secure flag."""
        return self.cookie_secure if self.cookie_secure is not None else self.public_base_url.startswith("https://")

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def sms_dir(self) -> Path:
        """Where the development SMS gateway writes messages."""
        return self.data_dir / "sms"

    def pii_key_list(self) -> list[str]:
        """The PII encryption keys: from settings, else one generated once and kept under data/."""
        if self.pii_keys.strip():
            return [key.strip() for key in self.pii_keys.split(",") if key.strip()]
        return [self._generated_secret("pii_key", lambda: Fernet.generate_key().decode())]

    def signing_key(self) -> str:
        """The token signing key: from settings, else one generated once and kept under data/."""
        if self.secret_key:
            return self.secret_key
        return self._generated_secret("secret_key", lambda: secrets.token_urlsafe(48))

    def _generated_secret(self, name: str, make: Callable[[], str]) -> str:
        """A secret made once for the embedded default and kept, owner-readable only, under data/."""
        path = self.data_dir / name
        if (known := _generated_secrets.get(path)) is not None:
            return known  # read once: intake signs with it on every rating
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(make())
            path.chmod(0o600)
        _generated_secrets[path] = secret = path.read_text().strip()
        return secret


# The embedded default's generated secrets, by file: a file once read is kept (it is never rewritten).
_generated_secrets: dict[Path, str] = {}


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
