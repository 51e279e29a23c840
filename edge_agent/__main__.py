"""``python -m edge_agent`` is the ``edge-agent`` command."""

import sys

from edge_agent.cli.main import main

sys.exit(main())
