"""Settings of the events service (environment prefix EVENTS_)."""

from common.settings import ServiceSettings, service_config
from pydantic import field_validator
from sqlalchemy.engine import make_url

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class EventsSettings(ServiceSettings):
    model_config = service_config("EVENTS_")

    service_name: str = "events"
    # A PostgreSQL URL naming a loopback host and no `ssl`/`sslmode` gets `ssl=disable` (see below).
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
    # Seconds over which commits are gathered before the in-process relay is woken (see app.py).
    relay_wake_delay: float = 0.02

    @field_validator("database_url")
    @classmethod
    def _no_tls_on_loopback(cls, value: str) -> str:
        """asyncpg's default (`sslmode=prefer`) encrypts even a connection to 127.0.0.1 when the
        server offers TLS, as Debian's does (snakeoil certificate): about 40 µs of CPU per round trip
        for nothing, since loopback traffic never leaves the machine. Say `?ssl=require` (or any
        `ssl`/`sslmode`) in the URL to keep it; remote hosts are left to asyncpg's default."""
        if not value.startswith("postgresql"):
            return value
        url = make_url(value)
        if url.host not in LOOPBACK or "ssl" in url.query or "sslmode" in url.query:
            return value
        return url.update_query_dict({"ssl": "disable"}).render_as_string(hide_password=False)
