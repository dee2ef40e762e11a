"""Configuration of every process, read from `CQRS_*` environment variables.

One `Settings` class serves the four processes so that a deployment sets each value once;
each process only touches what it needs. `get_settings()` is the single overridable entry
point (FastAPI dependency overrides and tests replace it), and nothing is read at import time.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CQRS_", extra="ignore")

    # Write model
    database_url: str = Field(
        "sqlite+aiosqlite:///.data/write.db",
        description="SQLAlchemy async URL of the write model (mysql+asyncmy:// or sqlite+aiosqlite://)",
    )
    database_pool_size: int = Field(
        20, ge=1, le=500,
        description="connections per process to MySQL, opened as needed and kept; "
                    "requests beyond them wait for one")
    database_timeout_s: float = Field(
        5.0, gt=0, le=300,
        description="lock-wait and connect timeout of the write model, seconds",
    )

    idempotency_ttl_s: int = Field(
        86_400, ge=60, le=30 * 86_400, description="how long an Idempotency-Key is remembered"
    )

    # Broker
    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", min_length=1,
                                         description="comma-separated host:port")
    kafka_enable_idempotence: bool = Field(
        True, description="idempotent producer: true for Kafka, false for the embedded Tansu broker"
    )
    kafka_topic: str = Field("cqrs-accounts.events", min_length=1, max_length=249,
                             description="topic all events go to")
    kafka_topic_partitions: int = Field(
        6, ge=1, le=1000, description="partitions when the topic is created"
    )
    kafka_replication_factor: int = Field(
        1, ge=1, le=10, description="replication factor when the topic is created"
    )
    kafka_session_timeout_ms: int = Field(
        10_000, ge=1000, le=300_000,
        description="projector group session timeout: a dead member's partitions move after it",
    )
    kafka_consumer_group: str = Field("cqrs-accounts-projector", min_length=1,
                                      description="projector group id")

    # Read store
    mongo_url: str = Field("mongodb://127.0.0.1:27017/?directConnection=true",
                           description="MongoDB connection string of the read store")
    mongo_database: str = Field("cqrs_accounts", min_length=1, max_length=63,
                                description="database holding the read models",
                                pattern=r"^[^/\\. \"$]+$")
    mongo_timeout_ms: int = Field(
        3000, ge=100, description="how long to wait for a read store that is down (server "
        "selection); a busy one gets 3x this, at least 10 s, to answer")

    # Relay
    relay_batch_size: int = Field(500, ge=1, le=10_000, description="outbox rows per claim")
    relay_idle_poll_ms: int = Field(
        25, ge=1, le=10_000, description="how long the relay sleeps when the outbox is empty"
    )
    relay_lease_s: float = Field(
        10.0, gt=0, le=600,
        description="leader lease; a standby takes over this long after a leader dies",
    )

    # Retention (command_service/retention.py, projector/dead_letters.py)
    outbox_retention_s: int = Field(
        7 * 86_400, ge=0, le=10 * 365 * 86_400,
        description="sent outbox rows older than this are deleted by the active relay")
    dead_letter_retention_s: int = Field(
        30 * 86_400, ge=0, le=10 * 365 * 86_400,
        description="discarded dead letters older than this are deleted by the projector")
    retention_interval_s: float = Field(
        60.0, gt=0, le=86_400, description="how often retention runs")

    # Projector
    projector_batch_size: int = Field(1000, ge=1, le=10_000, description="events per getmany")
    projector_poll_ms: int = Field(100, ge=1, le=10_000, description="getmany wait when idle")

    projector_max_attempts: int = Field(
        5, ge=1, le=100, description="tries of a failing event before it is dead-lettered")
    projector_first_backoff_ms: int = Field(
        200, ge=1, le=60_000, description="wait before the first retry; doubles per attempt")
    projector_gap_timeout_s: float = Field(
        120.0, gt=0, le=86_400,
        description="a missing version overdue this long is dead-lettered with what follows it")

    # verify --watch (operations/watch.py)
    verify_interval_s: float = Field(
        30.0, gt=0, le=86_400,
        description="pause between two passes of `verify --watch` over what changed")
    verify_settle_s: float = Field(
        2.0, ge=0, le=600,
        description="`verify --watch` counts a difference only if it is still there, "
                    "unchanged, this long later")

    # Query service
    consistency_wait_default_ms: int = Field(
        2000, ge=0, le=10_000,
        description="read-your-writes wait when X-Consistency-Wait-Ms is not sent")
    consistency_wait_max_ms: int = Field(
        10_000, ge=0, le=10_000, description="cap on X-Consistency-Wait-Ms")
    # Live updates (query_service/live.py, routers/streams.py)
    stream_poll_ms: int = Field(
        200, ge=10, le=10_000,
        description="how often the views open event streams watch are polled for changes")
    stream_keepalive_s: float = Field(
        15.0, gt=0, le=15, description="an event stream's keep-alive comment interval")
    streams_per_subject: int = Field(
        20, ge=1, le=100_000, description="open event streams per token subject, per process")

    # Authentication (shared/auth/): bearer JWTs on every /v1 route of both services
    auth_disabled: bool = Field(
        False, description="serve /v1 without tokens: only on a network nobody else reaches")
    auth_jwt_secret: SecretStr = Field(
        SecretStr(""), description="HS256 signing secret, at least 32 characters")
    auth_public_key: str = Field(
        "", description="RS256/ES256 verification key: a PEM file's path, or the PEM itself")
    auth_jwks_file: str = Field(
        "", description="path of a JWKS file of RS256/ES256 keys, chosen by the token's kid")
    auth_issuer: str = Field("cqrs-accounts", min_length=1,
                             description="the `iss` every token must carry")
    auth_audience: str = Field("cqrs-accounts", min_length=1,
                               description="the `aud` every token must carry")
    auth_metrics_admin_only: bool = Field(
        False, description="/metrics of both services needs a token with the admin scope")
    rate_limit_commands_per_s: float = Field(
        100.0, ge=0, le=1_000_000,
        description="commands per second per subject, refilled continuously; 0 = no limit")
    rate_limit_burst: int = Field(
        200, ge=1, le=1_000_000, description="commands a subject may send at once")
    # Queries cost less than commands and a page of views asks several at once; the limit is
    # there to stop a runaway client (a poll loop without a pause), not to ration readers.
    rate_limit_queries_per_s: float = Field(
        200.0, ge=0, le=1_000_000,
        description="queries per second per subject, refilled continuously; 0 = no limit")
    rate_limit_query_burst: int = Field(
        400, ge=1, le=1_000_000, description="queries a subject may send at once")

    # Browsers (both services)
    cors_allow_origins: str = Field(
        "", description="comma-separated origins a browser may call both services from "
                        "(e.g. https://app.example.com); empty: no CORS headers at all")

    # The HTTP services (cli/main.py `--workers` overrides it; shared/supervisor.py)
    workers: int = Field(
        1, ge=1, le=64,
        description="worker processes of command-api and query-api, all serving one port; "
                    "1 = one process, as without the setting")

    startup_wait_s: float = Field(
        30.0, ge=0, le=3600,
        description="how long a process waits at start for its dependencies to answer before "
                    "it stops with one line naming the one that does not")

    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: str = Field("json", pattern="^(json|text)$",
                            description="json (one object per line) or text")

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        if not url.startswith(("mysql+asyncmy://", "sqlite+aiosqlite://")):
            raise ValueError("must start with mysql+asyncmy:// or sqlite+aiosqlite://")
        return url

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _servers(cls, servers: str) -> str:
        if not [s for s in servers.split(",") if s.strip()]:
            raise ValueError("must name at least one host:port")
        return servers

    @field_validator("mongo_url")
    @classmethod
    def _mongo_scheme(cls, url: str) -> str:
        if not url.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return url

    @field_validator("auth_jwt_secret")
    @classmethod
    def _long_secret(cls, secret: SecretStr) -> SecretStr:
        # HS256 with a short secret can be brute-forced offline from any one token.
        if secret.get_secret_value() and len(secret.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters (try: openssl rand -hex 32)")
        return secret

    @field_validator("log_level")
    @classmethod
    def _level(cls, level: str) -> str:
        level = level.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return level

    @field_validator("cors_allow_origins")
    @classmethod
    def _origins(cls, origins: str) -> str:
        # An origin is scheme://host[:port] (or "*"): a path or a trailing slash never equals
        # the Origin header a browser sends, so it would silently allow nothing.
        for origin in (o.strip() for o in origins.split(",") if o.strip()):
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], no path)")
        return origins

    @property
    def cors_origins(self) -> list[str]:
        return [o.strip() for o in self.cors_allow_origins.split(",") if o.strip()]

    @property
    def bootstrap_servers(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]


class SettingsError(Exception):
    """A bad or missing setting, phrased as one line that names the variable."""


def load_settings(env_file: Path | None = None) -> Settings:
    """The settings from the environment; `env_file` (the running dev stack's, say) fills in
    what the environment does not set."""
    try:
        return Settings(_env_file=env_file)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"CQRS_{field.upper()}: {message}") from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
