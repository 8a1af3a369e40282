"""Settings from `RELAIS_*` environment variables (or a `.env` file); nothing is required."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.core.datadir import DataDir


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RELAIS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # Storage and bus.
    database_url: str = Field(
        default="sqlite+aiosqlite:///var/relais.sqlite3",
        description="SQLAlchemy async URL; sqlite+aiosqlite (default) or postgresql+asyncpg.",
    )
    redis_url: str | None = Field(default=None, description="Redis URL; enables the Redis bus.")
    database_pre_ping: bool = Field(
        default=True,
        description="Test a pooled connection before use when it has been idle for 2 s or "
        "more. Off: after a database restart the first use of a stale connection fails "
        "(webhook 503 and the provider retries; workers retry).",
    )
    bus_partitions: int = Field(default=8, ge=1, le=256)
    worker_linger_ms: float = Field(
        default=50,
        ge=0,
        le=1000,
        description="Under load, how long a worker waits for more messages before a batch "
        "(fewer, larger batches cost less CPU; 0: never waits).",
    )

    # Web.
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The URL providers call, as seen from outside (behind a proxy).",
    )
    secret_key: SecretStr = Field(
        default=SecretStr("dev-only-change-me"), description="Signs console sessions."
    )

    # Data and NLU.
    data_dir: Path | None = Field(
        default=None,
        description="A landlord's own data folder, laid out like the shipped one; each file it "
        "lacks is read from the defaults shipped with Relais.",
    )
    load_demo: bool = Field(default=True, description="Load data/ demo data into an empty DB.")
    nlu: Literal["embedded", "rasa"] = "embedded"
    nlu_model_path: Path = Path("var/nlu/model.pkl")
    nlu_threshold: float | None = None
    rasa_url: str | None = None
    timezone: str = "Europe/Paris"

    # Channels.
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_api_base: str = "https://api.twilio.com"
    telegram_token: SecretStr | None = None
    telegram_secret: SecretStr | None = None
    telegram_api_base: str = "https://api.telegram.org"
    webchat_origins: str = Field(
        default="*", description="Comma-separated origins allowed to embed the web chat."
    )

    # Delivery.
    outbox_max_attempts: int = 6
    outbox_backoff_seconds: float = 2.0
    outbox_lease_seconds: float = Field(
        default=60, gt=0, description="A reply claimed by a process that died is sent after this."
    )
    recovery_every_seconds: float = Field(
        default=15, gt=0, description="How often stored, unprocessed messages are looked for."
    )
    recovery_after_seconds: float = Field(
        default=60, ge=0, description="How long a message may wait in the bus before that."
    )

    # Console: an untaken handoff is pushed to a caretaker's phone, then to on call.
    escalate_after_minutes: float = Field(default=15, gt=0)
    escalate_emergency_after_minutes: float = Field(default=2, gt=0)

    # Dialogue: an intake the tenant stopped answering becomes a request (or a handoff).
    intake_timeout_minutes: float = Field(
        default=30, gt=0, description="Silence after which a half-finished intake is recorded."
    )
    # Identification proof: a one-time code sent by SMS to the tenant's phone on file.
    identity_code_minutes: float = Field(default=10, gt=0, description="Code lifetime.")
    identity_code_tries: int = Field(default=3, ge=1, description="Wrong codes before a new one.")
    identity_codes_per_hour: int = Field(
        default=3, ge=1, description="Codes sent per tenant and per session in an hour."
    )

    # Personal data.
    retention_months: int = Field(
        default=24, ge=1, description="Conversations older than this are erased (relais gdpr)."
    )

    # Operations.
    rate_limit_messages: int = Field(
        default=20, ge=1, description="Messages one sender may have run through the bot..."
    )
    rate_limit_window_seconds: int = Field(default=60, ge=1, description="...per this window.")
    log_format: Literal["json", "text"] | None = Field(
        default=None, description="Log lines as JSON or text; default: text on a tty, else JSON."
    )

    @property
    def data(self) -> DataDir:
        return DataDir(self.data_dir)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
