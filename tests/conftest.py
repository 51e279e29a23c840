"""Test-wide set-up.

``python -m pytest`` puts the repository root first on ``sys.path``, where ``edge_agent/`` is
the bare source folder without the ``modules`` and ``simulator`` sub-packages that the
installation maps in. Drop the root so every import resolves to the installed package, exactly
as in production (and in the child processes the agent starts).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != ROOT]
for name in [n for n in sys.modules if n == "edge_agent" or n.startswith("edge_agent.")]:
    module_file = getattr(sys.modules[name], "__file__", None) or ""
    if module_file.startswith(str(ROOT / "edge_agent")):
        del sys.modules[name]

# Under CI=true a skipped test fails (only socketcan tests may skip): fixtures/real_parts.py.
# fixtures/clock.py: the manual_clock fixture, for tests that drive time.
pytest_plugins = ["fixtures.real_parts", "fixtures.clock"]
