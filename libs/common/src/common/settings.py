"""Settings base shared by every service: one small subclass per service sets its env prefix.

Shared variables (KAFKA_BOOTSTRAP_SERVERS, EXCHANGE_JWT_SECRET, ...) are read unprefixed as a
fallback, so one environment can configure all four services; a prefixed variable wins.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.db import without_loopback_tls

DEVELOPMENT_SECRET = "dev-only-secret-change-me-0123456789abcdef"

_SHARED_FALLBACKS = {
    "kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "jwt_secret": "EXCHANGE_JWT_SECRET",
    "jwks_url": "EXCHANGE_JWKS_URL",
    "environment": "EXCHANGE_ENVIRONMENT",
    "topic_prefix": "EXCHANGE_TOPIC_PREFIX",
    "topic_partitions": "EXCHANGE_TOPIC_PARTITIONS",
}


class ServiceSettings(BaseSettings):
    """Settings every service has. Subclasses set `model_config = service_config("EVENTS_")`."""

    model_config = SettingsConfigDict(extra="ignore")

    service_name: str = "service"
    # Production unless told otherwise, so a forgotten setting refuses the public development secret.
    environment: str = "production"
    # A PostgreSQL URL naming a loopback host and no `ssl`/`sslmode` gets `ssl=disable` (common.db).
    database_url: str = "sqlite+aiosqlite:///./.local/service.db"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Tests give each run its own topics by prefixing them; production leaves this empty.
    topic_prefix: str = ""
    # Six divides evenly among 1, 2, 3 or 6 consumer processes (`reporting serve --workers N`, `reporting
    # rebuild --workers N` take whole partitions): with three, two processes split 2:1 and the second
    # idles a third of the time (bench/reporting/README.md, run 13: apply 17.3k → 21.5k/s).
    topic_partitions: int = 6
    jwt_secret: str = DEVELOPMENT_SECRET
    jwks_url: str | None = None
    jwt_audience: str | None = None
    max_body_bytes: int = 5 * 1024 * 1024
    relay_enabled: bool = True
    # A published message (key, value, headers) stays under this many bytes (the contract: 256 KiB):
    # a change whose message would not is refused with 422, and the relay quarantines any row over it.
    outbox_max_message_bytes: int = 256 * 1024
    log_level: str = "INFO"

    @model_validator(mode="before")
    @classmethod
    def _shared_fallbacks(cls, values: Any) -> Any:
        if isinstance(values, dict):
            for field, variable in _SHARED_FALLBACKS.items():
                if field not in values and variable in os.environ:
                    values[field] = os.environ[variable]
        return values

    @field_validator("database_url")
    @classmethod
    def _no_tls_on_loopback(cls, value: str) -> str:
        return without_loopback_tls(value)

    @model_validator(mode="after")
    def _refuse_default_secret_outside_development(self) -> ServiceSettings:
        if self.environment not in ("development", "test") and self.jwt_secret == DEVELOPMENT_SECRET:
            raise ValueError("EXCHANGE_JWT_SECRET must be set outside development")
        return self

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


def service_config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore")
