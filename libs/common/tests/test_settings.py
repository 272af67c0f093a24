"""Settings every service shares: the loopback TLS rule and the refusal of the development secret."""

from __future__ import annotations

import pytest
from common.settings import DEVELOPMENT_SECRET, ServiceSettings


@pytest.mark.parametrize(
    ("given", "expected_ssl"),
    [
        ("postgresql+asyncpg://u:p@127.0.0.1:5432/db", "disable"),
        ("postgresql+asyncpg://u:p@localhost/db", "disable"),
        ("postgresql+asyncpg://u:p@127.0.0.1/db?ssl=require", "require"),  # asked for: kept
        ("postgresql+asyncpg://u:p@db.example.org/db", None),  # remote: asyncpg's default
    ],
)
def test_no_tls_to_a_loopback_postgresql_unless_asked_for(given: str, expected_ssl: str | None) -> None:
    url = ServiceSettings(environment="test", database_url=given).database_url
    assert (f"ssl={expected_ssl}" in url) if expected_ssl else ("ssl" not in url)
    assert "u:p@" in url  # the password survives the rewrite


def test_sqlite_urls_are_left_alone() -> None:
    url = "sqlite+aiosqlite:///./.local/x.db"
    assert ServiceSettings(environment="test", database_url=url).database_url == url


def test_the_development_secret_is_refused_in_production() -> None:
    with pytest.raises(ValueError, match="EXCHANGE_JWT_SECRET"):
        ServiceSettings(environment="production", jwt_secret=DEVELOPMENT_SECRET)
