"""`reporting serve --workers N` refuses SQLite, whose one process cannot share its streams."""

from __future__ import annotations

import pytest
from common import web
from reporting.entrypoints import cli
from reporting.entrypoints.cli import main


def test_several_workers_on_sqlite_are_refused_with_a_clear_message(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("REPORTING_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/r.db")
    monkeypatch.setenv("REPORTING_ENVIRONMENT", "development")
    started: list[object] = []
    monkeypatch.setattr(web, "serve", lambda *args, **kwargs: started.append(args))
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--workers", "2", "--port", "1"])
    assert exited.value.code == 2
    assert "--workers above 1 needs PostgreSQL" in capsys.readouterr().err
    assert not started


def test_a_rebuild_in_several_processes_on_sqlite_is_refused(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("REPORTING_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/r.db")
    monkeypatch.setenv("REPORTING_ENVIRONMENT", "development")
    ran: list[object] = []
    monkeypatch.setattr(cli, "run_async", lambda coroutine: ran.append(coroutine.close()))
    with pytest.raises(SystemExit) as exited:
        main(["rebuild", "--workers", "2"])
    assert exited.value.code == 2
    assert "--workers above 1 needs PostgreSQL" in capsys.readouterr().err
    assert not ran


@pytest.mark.parametrize(
    ("url", "expected"),
    [("sqlite+aiosqlite:///{tmp}/r.db", 1), ("postgresql+asyncpg://u:p@127.0.0.1:1/r", 2)],
)
def test_a_rebuild_replays_in_two_processes_on_postgresql_by_default(monkeypatch, tmp_path, url, expected) -> None:
    monkeypatch.setenv("REPORTING_DATABASE_URL", url.format(tmp=tmp_path))
    monkeypatch.setenv("REPORTING_ENVIRONMENT", "development")
    chosen: list[int] = []

    async def fake_rebuild(settings, keep_previous, workers) -> None:
        chosen.append(workers)

    monkeypatch.setattr(cli, "_rebuild", fake_rebuild)
    monkeypatch.setattr(cli, "run_async", lambda coroutine: coroutine.send(None))
    with pytest.raises(StopIteration):
        main(["rebuild"])
    assert chosen == [expected]
