"""Settings of the events service (environment prefix EVENTS_)."""

from common.settings import ServiceSettings, service_config


class EventsSettings(ServiceSettings):
    model_config = service_config("EVENTS_")

    service_name: str = "events"
    # A PostgreSQL URL naming a loopback host and no `ssl`/`sslmode` gets `ssl=disable` (common.db).
    database_url: str = "sqlite+aiosqlite:///./.local/events.db"
    # A fixed pool sized for the request concurrency of one worker: connections beyond the pool
    # (SQLAlchemy's overflow) are opened and closed per request, which costs a TCP and TLS handshake
    # each and was most of the single-POST CPU under load (bench/events/README.md). The same size
    # bounds the raw connections of the create paths (adapters/pg.py).
    db_pool_size: int = 20
    db_max_overflow: int = 5
    # Pinging on every checkout costs a round trip per request; a connection broken by a database
    # restart fails one request and SQLAlchemy then invalidates the whole pool.
    db_pool_pre_ping: bool = False
    # Seconds over which commits are gathered before the in-process relay is woken (OutboxRelay.wake).
    relay_wake_delay: float = 0.02
