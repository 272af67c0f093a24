"""`reporting serve --workers N` refuses SQLite, whose one process cannot share its streams."""

from __future__ import annotations

import pytest
from reporting.entrypoints import cli
from reporting.entrypoints.cli import main


def test_several_workers_on_sqlite_are_refused_with_a_clear_message(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("REPORTING_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/r.db")
    monkeypatch.setenv("REPORTING_ENVIRONMENT", "development")
    started: list[object] = []
    monkeypatch.setattr(cli, "serve_app", lambda *args, **kwargs: started.append(args))
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--workers", "2", "--port", "1"])
    assert exited.value.code == 2
    assert "--workers above 1 needs PostgreSQL" in capsys.readouterr().err
    assert not started
