"""One table of exit statuses: the CLI, the supervisor, the OTA module and the docs agree on it."""

from __future__ import annotations

import re
from pathlib import Path

from edge_agent.cli import exit_codes as cli_exit_codes
from edge_agent.exit_codes import Exit
from edge_agent.modules.ota.config import OtaConfig

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_uses_the_one_table() -> None:
    assert cli_exit_codes.Exit is Exit
    assert cli_exit_codes.UserError("bad").code is Exit.BAD_INPUT


def test_every_status_has_its_own_number() -> None:
    assert len({int(status) for status in Exit}) == len(Exit)


def test_the_readme_documents_every_status() -> None:
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    start = text.index("Exit statuses:")
    sentence = text[start : text.index(" interrupted.", start) + len(" interrupted")]
    documented = {int(number) for number in re.findall(r"\b(\d+) [a-z]", sentence)}
    assert documented == {int(status) for status in Exit}


def test_the_ota_restart_status_is_the_one_systemd_restarts_on() -> None:
    options = {"metadata_url": "http://r/m", "targets_url": "http://r/t", "hardware_id": "ecu"}
    assert OtaConfig.model_validate(options).restart_exit_status == Exit.RESTART_REQUESTED == 75
    unit = (ROOT / "systemd" / "edge-agent.service").read_text(encoding="utf-8")
    assert f"RestartForceExitStatus={int(Exit.RESTART_REQUESTED)}" in unit
    assert f"SuccessExitStatus={int(Exit.RESTART_REQUESTED)}" in unit
