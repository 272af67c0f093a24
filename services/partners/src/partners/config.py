"""Settings of the partners service (environment prefix PARTNERS_)."""

from common.settings import ServiceSettings, service_config
from pydantic import Field


class PartnersSettings(ServiceSettings):
    model_config = service_config("PARTNERS_")

    service_name: str = "partners"
    database_url: str = "sqlite+aiosqlite:///./.local/partners.db"
    # Signed PDF scans, one file per SHA-256.
    documents_dir: str = "./.local/partners-documents"
    # How often the scheduler looks for agreements to expire or to give a renewal notice.
    scheduler_interval_seconds: float = Field(default=60.0, gt=0)
    scheduler_enabled: bool = True
