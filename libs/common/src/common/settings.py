"""Settings base shared by every service: one small subclass per service sets its env prefix.

Shared variables (KAFKA_BOOTSTRAP_SERVERS, EXCHANGE_JWT_SECRET, ...) are read unprefixed as a
fallback, so one environment can configure all four services; a prefixed variable wins.
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from common.db import without_loopback_tls

DEVELOPMENT_SECRET = "dev-only-secret-change-me-0123456789abcdef"
# RFC 7518 §3.2: an HS256 key at least as long as the hash (32 bytes); shorter ones can be brute-forced.
MIN_SECRET_BYTES = 32
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d{1,5})?")

_SHARED_FALLBACKS = {
    "kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "jwt_secret": "EXCHANGE_JWT_SECRET",
    "jwt_keys": "EXCHANGE_JWT_KEYS",
    "jwt_current_kid": "EXCHANGE_JWT_CURRENT_KID",
    "jwt_issuer": "EXCHANGE_JWT_ISSUER",
    "jwt_audience": "EXCHANGE_JWT_AUDIENCE",
    "jwks_url": "EXCHANGE_JWKS_URL",
    "environment": "EXCHANGE_ENVIRONMENT",
    "topic_prefix": "EXCHANGE_TOPIC_PREFIX",
    "topic_partitions": "EXCHANGE_TOPIC_PARTITIONS",
    "topic_replication_factor": "EXCHANGE_TOPIC_REPLICATION_FACTOR",
    "topic_min_insync_replicas": "EXCHANGE_TOPIC_MIN_INSYNC_REPLICAS",
    "manage_topics": "EXCHANGE_MANAGE_TOPICS",
    "timezone": "EXCHANGE_TIMEZONE",
    "rate_limit_per_minute": "EXCHANGE_RATE_LIMIT_PER_MINUTE",
    "dashboard_origin": "EXCHANGE_DASHBOARD_ORIGIN",
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
    # idles a third of the time, a fifth of the apply rate lost against six (bench/reporting/README.md).
    topic_partitions: int = 6
    # A single local broker holds one copy; production uses 3 copies with 2 in sync, so an acknowledged message (the
    # relay's producer waits for acks=all) is on two brokers before the outbox row is deleted.
    topic_replication_factor: int = Field(default=1, ge=1)
    # `min.insync.replicas` of the topics (2 in production); at most the replication factor.
    topic_min_insync_replicas: int = Field(default=1, ge=1)
    # False where an operator (Strimzi's Topic Operator, say) owns the topics: the services then create and
    # change none, and only report those that would drop data.
    manage_topics: bool = True
    jwt_secret: str = DEVELOPMENT_SECRET
    # HS256 keys by `kid`, `kid=secret,kid2=secret2` (a secret may hold `=`, not `,`); replaces jwt_secret.
    # A token is checked with the key its `kid` names, one without `kid` with each; others are refused.
    jwt_keys: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    # The `kid` of jwt_keys that signs the tokens the services mint; default the first listed.
    jwt_current_kid: str | None = None
    # When set, tokens must carry this `iss` (the services' own minted tokens do).
    jwt_issuer: str | None = None
    jwks_url: str | None = None
    jwt_audience: str | None = None
    max_body_bytes: int = 5 * 1024 * 1024
    # Requests a minute per token subject, per process (common.ratelimit): one more gets 429 with
    # Retry-After. 0 turns the limit off (development, benchmarks, the demo loader); production sets it.
    rate_limit_per_minute: int = Field(default=0, ge=0)
    # The one origin (`https://dashboard.example.org`) whose pages may call the APIs from a browser (CORS);
    # unset, no cross-origin call is allowed (the dashboard reporting serves is same-origin). Never `*`.
    dashboard_origin: str | None = None
    # How long the audit record (common.audit) keeps an entry; older ones are purged.
    audit_retention_days: int = Field(default=3650, ge=1)
    relay_enabled: bool = True
    # A published message (key, value, headers) stays under this many bytes (the contract: 256 KiB):
    # a change whose message would not is refused with 422, and the relay quarantines any row over it.
    outbox_max_message_bytes: int = 256 * 1024
    log_level: str = "INFO"
    # The association's time zone: "today", and so every day an agreement expires or a figure counts on.
    timezone: str = "Asia/Shanghai"

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

    @field_validator("dashboard_origin")
    @classmethod
    def _one_origin(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not _ORIGIN.fullmatch(value):
            raise ValueError(
                f"EXCHANGE_DASHBOARD_ORIGIN {value!r} is not one origin (`https://host[:port]`, no path, no wildcard)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"EXCHANGE_TIMEZONE {value!r} is not an IANA time zone") from exc
        return value

    def today(self) -> date:
        """Today's date in the association's time zone."""
        return datetime.now(ZoneInfo(self.timezone)).date()

    @field_validator("jwt_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> Any:
        return parse_jwt_keys(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _choose_current_key(self) -> ServiceSettings:
        if self.jwt_current_kid is None and self.jwt_keys:
            self.jwt_current_kid = next(iter(self.jwt_keys))
        elif self.jwt_current_kid is not None and self.jwt_current_kid not in self.jwt_keys:
            raise ValueError(f"EXCHANGE_JWT_CURRENT_KID {self.jwt_current_kid!r} names no key of EXCHANGE_JWT_KEYS")
        return self

    @model_validator(mode="after")
    def _refuse_weak_secrets_outside_development(self) -> ServiceSettings:
        if self.environment in ("development", "test"):
            return self
        secrets = list(self.jwt_keys.values()) or [self.jwt_secret]
        # Empty is unset: docker-compose.yml passes the secret through as "" when it is not exported.
        if DEVELOPMENT_SECRET in secrets or "" in secrets:
            raise ValueError("EXCHANGE_JWT_SECRET must be set outside development")
        if any(len(secret.encode()) < MIN_SECRET_BYTES for secret in secrets):
            raise ValueError(f"EXCHANGE_JWT_SECRET and EXCHANGE_JWT_KEYS secrets need {MIN_SECRET_BYTES} bytes or more")
        return self

    @property
    def signing_key(self) -> tuple[str | None, str]:
        """(kid, secret) that signs new tokens: the current key, or the one secret without a kid."""
        if self.jwt_current_kid is not None:
            return self.jwt_current_kid, self.jwt_keys[self.jwt_current_kid]
        return None, self.jwt_secret

    @model_validator(mode="after")
    def _insync_replicas_within_replication(self) -> ServiceSettings:
        if self.topic_min_insync_replicas > self.topic_replication_factor:
            # Every acks=all send would then fail with NotEnoughReplicas.
            raise ValueError("EXCHANGE_TOPIC_MIN_INSYNC_REPLICAS exceeds EXCHANGE_TOPIC_REPLICATION_FACTOR")
        return self

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


def association_today() -> date:
    """Today in the association's time zone (`EXCHANGE_TIMEZONE`, default Asia/Shanghai), for code that
    has no settings object at hand."""
    return datetime.now(ZoneInfo(os.environ.get("EXCHANGE_TIMEZONE") or "Asia/Shanghai")).date()


def parse_jwt_keys(spec: str) -> dict[str, str]:
    """`kid=secret,kid2=secret2` → {kid: secret}, in the order given. A secret may contain `=` (base64
    padding) but no comma; blanks around the items are ignored."""
    keys: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kid, equals, secret = item.partition("=")
        kid, secret = kid.strip(), secret.strip()
        if not (equals and kid and secret):
            raise ValueError("EXCHANGE_JWT_KEYS: every item must be `kid=secret`")
        if kid in keys:
            raise ValueError(f"EXCHANGE_JWT_KEYS: the kid {kid!r} is given twice")
        keys[kid] = secret
    return keys


def service_config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore")
