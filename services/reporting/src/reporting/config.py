"""Settings of the reporting service (environment prefix REPORTING_)."""

from common.settings import ServiceSettings, service_config


class ReportingSettings(ServiceSettings):
    model_config = service_config("REPORTING_")

    service_name: str = "reporting"
    database_url: str = "sqlite+aiosqlite:///./.local/reporting.db"
