"""Settings of the partners service (environment prefix PARTNERS_)."""

from common.settings import ServiceSettings, service_config


class PartnersSettings(ServiceSettings):
    model_config = service_config("PARTNERS_")

    service_name: str = "partners"
    database_url: str = "sqlite+aiosqlite:///./.local/partners.db"
