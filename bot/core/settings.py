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
    phone_region: str = Field(
        default="FR",
        description='How national phone numbers ("06 12…") are read: imports, Telegram '
        "contacts, numbers tenants type (ISO country code).",
    )

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
    webchat_session_idle_hours: float = Field(
        default=14 * 24,
        gt=0,
        description="A web-chat session unused this long is over: its tokens are refused and "
        "the widget starts a new one (tokens also change at every use).",
    )
    forwarded_header: str | None = Field(
        default=None,
        description="Behind a reverse proxy: the header it sets to the client's address "
        "(e.g. X-Forwarded-For, X-Real-IP; the last address in it is used). Unset: the "
        "socket's peer address. Only this header is read, so clients cannot choose theirs.",
    )
    webchat_sessions_per_ip_hour: int = Field(
        default=20, ge=1, description="New web-chat sessions one client address may open per hour."
    )
    webchat_sessions_per_hour: int = Field(
        default=600, ge=1, description="New web-chat sessions per hour, all clients together."
    )
    webchat_messages_per_ip_minute: int = Field(
        default=30, ge=1, description="Web-chat messages and uploads per client address a minute."
    )
    webchat_messages_per_minute: int = Field(
        default=600, ge=1, description="Web-chat messages and uploads a minute, all clients."
    )

    # Uploads (web-chat photos).
    uploads_url: str = Field(
        default="var/uploads",
        description="Where uploads are kept: a folder, or s3://bucket/prefix for an "
        "S3-compatible store (credentials: the usual AWS_* variables).",
    )
    uploads_s3_endpoint: str | None = Field(
        default=None, description="S3-compatible endpoint URL (MinIO, Scaleway, OVH…)."
    )
    uploads_s3_region: str | None = None
    upload_max_mb: int = Field(default=5, ge=1, le=50, description="Largest photo accepted.")
    uploads_per_session: int = Field(
        default=20, ge=1, description="Photos one web-chat session may have stored."
    )
    uploads_session_mb: int = Field(
        default=40, ge=1, description="Megabytes one web-chat session may have stored."
    )
    uploads_total_mb: int = Field(
        default=2048, ge=1, description="Megabytes of uploads kept in all: past it, refused."
    )
    uploads_unattached_minutes: float = Field(
        default=15,
        gt=0,
        description="An upload not attached to a message within this is deleted.",
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
    alert_group_minutes: float = Field(
        default=5,
        gt=0,
        description="Staff alerts of one residence and kind within this are grouped: the "
        "first goes at once, the next ones in one alert listing them at the end of it.",
    )
    alert_flood_reports: int = Field(
        default=10,
        ge=2,
        description="That many reports in one group is a flood: on-call and managers are "
        "told once an hour.",
    )

    # Requests: quiet hours, deadlines, follow-up (bot.lifecycle).
    quiet_hours: str = Field(
        default="20:00-08:00",
        description="Local hours when tenants get no status message (held until the end); "
        "empty: none. Emergencies are never held.",
    )
    holidays_country: str = Field(default="FR", description="Public holidays (`holidays`).")
    holidays_subdivision: str | None = Field(
        default=None, description="e.g. 57 for Moselle's own public holidays."
    )
    deadlines: dict[str, str] = Field(
        default_factory=lambda: {
            "emergency": "24h",
            "heating_winter": "48h",
            "repair": "15wd",
            "nuisance": "15wd",
            "bulky_waste": "10wd",
        },
        description="Per kind: hours (24h), days (3d) or working days (15wd); JSON in the "
        "environment. heating_winter: heating or hot water from October to April.",
    )
    request_autoclose_days: int = Field(
        default=7, ge=1, description="A request marked done is closed after this without answer."
    )
    late_manager_after_hours: float = Field(
        default=24, gt=0, description="A late request reminded to its caretaker goes to managers."
    )
    media_dir: Path = Field(
        default=Path("var/media"), description="Photos staff attach (work done on a request)."
    )
    # Outgoing webhooks to the landlord's systems (Standard Webhooks signatures).
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = Field(default=None, description="whsec_<base64>")
    webhook_timeout_seconds: float = Field(default=10, gt=0)

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
