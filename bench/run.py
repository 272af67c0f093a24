"""`make bench`: run every benchmark script (bench/<area>/*.py with a __main__) one after another."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    failures = 0
    for script in sorted(HERE.glob("*/*.py")):
        if script.name.startswith("_") or "__main__" not in script.read_text():
            continue
        print(f"\n=== {script.relative_to(HERE)} ===", flush=True)
        failures += subprocess.run([sys.executable, str(script)], check=False).returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
