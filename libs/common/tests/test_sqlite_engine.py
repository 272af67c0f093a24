"""SQLite engines: the first connections of several engines on a file still in rollback-journal
mode (just migrated) all switch it to WAL, and none of them may fail doing so."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from common.db import create_engine
from sqlalchemy import text


async def _first_connections(path: Path, engines: int) -> list[BaseException]:
    plain = sqlite3.connect(path)  # as the migrations leave it: rollback-journal mode
    plain.execute("CREATE TABLE t (x INTEGER)")
    plain.commit()
    plain.close()
    made = [create_engine(f"sqlite+aiosqlite:///{path}") for _ in range(engines)]

    async def connect(engine) -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    try:
        outcomes = await asyncio.gather(*[connect(e) for e in made], return_exceptions=True)
    finally:
        for engine in made:
            await engine.dispose()
    return [o for o in outcomes if isinstance(o, BaseException)]


async def test_concurrent_first_connections_all_succeed_and_leave_wal(tmp_path: Path) -> None:
    # Before the fix about one round in ten failed with `database is locked`; 60 rounds of 6.
    failures = []
    for round_ in range(60):
        path = tmp_path / f"r{round_}.db"
        failures += await _first_connections(path, engines=6)
        mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    assert failures == []
