"""Settings of the events service (environment prefix EVENTS_)."""

from common.settings import ServiceSettings, service_config


class EventsSettings(ServiceSettings):
    model_config = service_config("EVENTS_")

    service_name: str = "events"
    database_url: str = "sqlite+aiosqlite:///./.local/events.db"
