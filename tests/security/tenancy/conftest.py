"""The tenancy battery's table (`security_surface`) is a module beside its tests: put this
folder on the import path for them (tests/security/sessions reads the same table)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
