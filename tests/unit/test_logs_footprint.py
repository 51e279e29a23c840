"""Logging keeps rich and pygments out of the agent process, even where they are installed.

structlog imports rich as soon as it is imported, wherever rich is installed (the development
environment has it), and rich brings pygments: 6.7 MB of the agent's memory in the soak
(docs/reliability.md). The agent's runtime must not load either, whatever it logs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# The agent's runtime: the CLI, the supervisor, a process-isolated module's host and every
# installed module (through the entry points, as the supervisor finds them), then logging
# configured in both formats with an exception logged by ours and by a stdlib logger.
RUNTIME = """
import io, json, logging, sys
import edge_agent.cli.main, edge_agent.supervisor, edge_agent.process.host
from edge_agent.discovery import installed_modules, load_module_class
from edge_agent.logs import configure_logging, get_logger

for name in installed_modules():
    load_module_class(name)
for log_format in ("json", "console"):
    out = io.StringIO()
    configure_logging("debug", log_format, out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        get_logger("edge_agent.test").exception("module failed", module="x")
        logging.getLogger("can").exception("stdlib failed")
    assert out.getvalue().count("RuntimeError: boom") == 2, out.getvalue()
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_the_runtime_logs_exceptions_without_loading_rich_or_pygments(tmp_path: Path) -> None:
    # cwd away from the repository root: its bare edge_agent/ folder must not shadow the install.
    result = subprocess.run(
        [sys.executable, "-c", RUNTIME],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loaded = set(json.loads(result.stdout))
    assert "structlog" in loaded
    assert "can" in loaded
    assert "aiomqtt" in loaded
    assert not loaded & {"rich", "pygments"}, result.stdout
