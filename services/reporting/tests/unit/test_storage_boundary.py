"""Which database reporting runs on is known only in `adapters/` (and the composition root in `entrypoints/`):
everything else reaches the differences through the adapters' ports. Imports of asyncpg are checked by
`lint-imports` (pyproject.toml), whose contract must name every other package of reporting."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import reporting

PACKAGE = Path(reporting.__file__).resolve().parent
PYPROJECT = Path(__file__).resolve().parents[4] / "pyproject.toml"
ALLOWED = {"adapters", "entrypoints"}
DIALECT_NAME = re.compile(r"dialect\s*\.\s*name")


def modules_asking_the_dialect(package: Path) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if relative.parts[0] in ALLOWED:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if DIALECT_NAME.search(line):
                found.append(f"{relative}:{number}: {line.strip()}")
    return found


def test_no_module_outside_the_adapters_asks_which_database_it_is_on() -> None:
    assert modules_asking_the_dialect(PACKAGE) == []


def test_the_scan_finds_a_dialect_check_and_skips_the_adapters(tmp_path: Path) -> None:
    (tmp_path / "read").mkdir()
    (tmp_path / "adapters").mkdir()
    (tmp_path / "read" / "queries.py").write_text('if session.get_bind().dialect.name == "postgresql":\n    pass\n')
    (tmp_path / "adapters" / "writers.py").write_text('postgresql = bind.dialect.name == "postgresql"\n')
    assert modules_asking_the_dialect(tmp_path) == [
        'read/queries.py:1: if session.get_bind().dialect.name == "postgresql":'
    ]


def test_the_asyncpg_contract_covers_every_package_but_the_adapters_and_entrypoints() -> None:
    contracts = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]
    (guard,) = [
        c
        for c in contracts
        if c.get("forbidden_modules") == ["asyncpg"] and c["source_modules"][0].startswith("reporting.")
    ]
    children = {p.stem for p in PACKAGE.iterdir() if (p.suffix == ".py" or (p / "__init__.py").exists())}
    expected = {f"reporting.{name}" for name in children - ALLOWED - {"__init__"}}
    assert set(guard["source_modules"]) == expected
