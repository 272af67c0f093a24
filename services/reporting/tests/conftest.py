from __future__ import annotations

import sys
from pathlib import Path

# support.py sits next to this file; tests import it as a plain module.
sys.path.insert(0, str(Path(__file__).resolve().parent))
