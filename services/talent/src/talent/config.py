"""Settings of the talent service (environment prefix TALENT_)."""

from common.settings import ServiceSettings, service_config


class TalentSettings(ServiceSettings):
    model_config = service_config("TALENT_")

    service_name: str = "talent"
    database_url: str = "sqlite+aiosqlite:///./.local/talent.db"
