"""`make demo`: the agent, the simulator, a broker and the cloud on this laptop, watched live.

Thin entry point: puts ``scripts/`` on the path (for this process and its children) and runs
:mod:`edge_demo`. ``DEMO_SECONDS=N make demo`` runs N seconds without a terminal.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SCRIPTS = str(Path(__file__).resolve().parent)
sys.path.insert(0, SCRIPTS)
os.environ["PYTHONPATH"] = os.pathsep.join([SCRIPTS, *filter(None, [os.environ.get("PYTHONPATH")])])

from edge_demo.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
