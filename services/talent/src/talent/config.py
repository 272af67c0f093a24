"""Settings of the talent service (environment prefix TALENT_)."""

from common.settings import ServiceSettings, service_config


class TalentSettings(ServiceSettings):
    model_config = service_config("TALENT_")

    service_name: str = "talent"
    database_url: str = "sqlite+aiosqlite:///./.local/talent.db"
    # A JSON sync of 10,000 records at the contract's bounds; the ndjson stream has no body limit.
    sync_max_body_bytes: int = 64 * 1024 * 1024
    # Records validated, compared and committed together in a sync (a stream's memory stays flat).
    sync_chunk: int = 2_000
