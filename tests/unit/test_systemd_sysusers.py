"""The sysusers.d and tmpfiles.d files create the service's user and config directories.

systemd-sysusers and systemd-tmpfiles run for real against a throw-away root directory.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSUSERS = ROOT / "systemd/sysusers.d/edge-agent.conf"
TMPFILES = ROOT / "systemd/tmpfiles.d/edge-agent.conf"

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-sysusers") is None or shutil.which("systemd-tmpfiles") is None,
    reason="SKIPPED LOUDLY: systemd-sysusers/systemd-tmpfiles are not installed",
)


def run(*command: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result


def test_user_and_config_directories_are_created(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    for source, folder in ((SYSUSERS, "sysusers.d"), (TMPFILES, "tmpfiles.d")):
        target = tmp_path / "usr/lib" / folder
        target.mkdir(parents=True)
        shutil.copy(source, target / source.name)
    run("systemd-sysusers", f"--root={tmp_path}", SYSUSERS.name)
    passwd = (tmp_path / "etc/passwd").read_text()
    user = re.search(r"^edge-agent:x:(\d+):(\d+):[^:]*:([^:]*):([^:\n]*)$", passwd, re.MULTILINE)
    assert user, passwd
    uid, gid, home, shell = int(user[1]), int(user[2]), user[3], user[4]
    assert 0 < uid < 1000, "a system user"
    assert home == "/var/lib/edge-agent"
    assert shell.endswith("nologin")
    run("systemd-tmpfiles", f"--root={tmp_path}", "--create", TMPFILES.name)
    for directory in ("etc/edge-agent", "etc/edge-agent/tls"):
        info = (tmp_path / directory).stat()
        assert info.st_mode & 0o777 == 0o750, directory
        assert (info.st_uid, info.st_gid) == (0, gid), directory


def test_service_runs_as_the_sysusers_user() -> None:
    unit = (ROOT / "systemd/edge-agent.service").read_text()
    assert "User=edge-agent" in unit
    assert "Group=edge-agent" in unit
    assert re.search(r"^u edge-agent ", SYSUSERS.read_text(), re.MULTILINE)
