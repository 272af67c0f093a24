"""The partners migrations go up and down on PostgreSQL and SQLite, and up again."""

from __future__ import annotations

from common.testing.service import check_up_down_up

from ..conftest import SERVICE_DIR

TABLES = {"organizations", "agreements", "agreement_partners", "memberships", "audit_log"}


async def _up_down_up(url: str) -> None:
    await check_up_down_up(url, SERVICE_DIR, TABLES, down_to="0003")


async def test_up_down_up_on_postgresql(make_database):
    await _up_down_up(await make_database("pa_migrations"))


async def test_up_down_up_on_sqlite(tmp_path):
    await _up_down_up(f"sqlite+aiosqlite:///{tmp_path}/partners.db")
