"""Settings of the reporting service (environment prefix REPORTING_)."""

from common.settings import ServiceSettings, service_config
from pydantic import Field

DEFAULT_TARGETS = {
    "partners": 150,
    "agreements": 120,
    "people": 10_000,
    "organizations": 300,
    "flagship_projects": 50,
}


class ReportingSettings(ServiceSettings):
    model_config = service_config("REPORTING_")

    service_name: str = "reporting"
    database_url: str = "sqlite+aiosqlite:///./.local/reporting.db"
    consumer_group: str = "reporting"
    consumer_enabled: bool = True
    # Messages applied per transaction when catching up; the per-batch writes (counters, country
    # references: ~4,000 rows whatever the batch) are shared by more messages in a bigger batch.
    max_batch: int = 10_000
    # Inbox ids (one row per applied message) older than this are forgotten. Redelivery after that is
    # still harmless here: a version not newer than the one applied is ignored.
    inbox_retention_days: int = Field(default=30, ge=1)
    # Plan targets (2023–2025 plan); REPORTING_TARGETS='{"partners": 160, ...}' overrides some or all.
    targets: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_TARGETS))
    # SSE: changes are coalesced over this window, so a burst of events sends a handful of messages.
    stream_coalesce_ms: int = 150
    stream_heartbeat_seconds: float = 15.0
    stream_buffer: int = 2048
    stream_queue_size: int = 256
    # Open streams per process (REPORTING_SSE_MAX_SUBSCRIBERS); one more is answered 503 with Retry-After.
    sse_max_subscribers: int = Field(default=10_000, ge=1)
    # Short-lived read tokens for the dashboard's EventSource (which cannot send headers).
    dashboard_token_ttl_seconds: int = 600

    def source_topics(self) -> list[str]:
        return [self.topic(t) for t in ("exchange.partners.v1", "exchange.events.v1", "exchange.talent.v1")]
