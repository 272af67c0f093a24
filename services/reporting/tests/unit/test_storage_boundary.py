"""Which database reporting runs on is known only in `adapters/` (and the composition root in `entrypoints/`):
everything else reaches the differences through the adapters' ports."""

from __future__ import annotations

import re
from pathlib import Path

import reporting

PACKAGE = Path(reporting.__file__).resolve().parent
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
