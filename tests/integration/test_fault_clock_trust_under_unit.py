"""Fault matrix: clock trust and the boot id under the shipped unit's sandbox.

The shipped unit's system-call filter (and, before the fix, ``ProtectClock=yes``) turned the
read-only ``adjtimex`` into EPERM, so where chrony, ntpd or a GPS-disciplined chrony (not
timesyncd) keep the time, batches were never trusted. ``ProcSubset=pid`` hides
/proc/sys/kernel/random/boot_id. Pass: under the unit's own filter (rebuilt with libseccomp,
tests/fixtures/unit_filter.py) the kernel's clock state is read, and the boot id comes from
the unit's environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from edge_agent.clocktrust import BOOT_ID_ENV, BOOT_ID_PATH, current_boot_id, kernel_clock_state
from fixtures.unit_filter import allowed_and_denied, run_under_unit_filter

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "edge-agent.service"


def test_the_kernel_clock_state_is_readable_under_the_unit_filter() -> None:
    outside = kernel_clock_state()
    assert outside is not None  # this host's kernel answers without a filter
    result = run_under_unit_filter(
        UNIT,
        "print(kernel_clock_state(), WallClockTrust(TrustPolicy.KERNEL).trusted())",
        imports="from edge_agent.clocktrust import kernel_clock_state, WallClockTrust, TrustPolicy",
    )
    assert result.returncode == 0, result.stderr
    state, trusted = result.stdout.split()
    # The same answer as outside the sandbox: chrony's, ntpd's or timesyncd's sync is seen.
    assert int(state) == outside
    assert trusted == str(outside < 5)


def test_the_unit_filter_still_refuses_to_set_the_clock() -> None:
    allowed, stacked, _ = allowed_and_denied(UNIT)
    assert {"adjtimex", "clock_adjtime"} <= allowed - stacked
    assert not {"clock_settime", "settimeofday"} & allowed
    result = run_under_unit_filter(
        UNIT,
        "import time\n"
        "try:\n"
        "    time.clock_settime(time.CLOCK_REALTIME, time.time())\n"
        "except PermissionError:\n"
        "    print('refused')\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "refused"


def test_the_filter_model_sees_what_protect_clock_did() -> None:
    """The old unit (ProtectClock=yes, no clock reads allowed back) refused the read."""
    old = UNIT.read_text().replace("\nSystemCallFilter=adjtimex clock_adjtime\n", "\n")
    old = old.replace("\nPrivateMounts=yes\n", "\nProtectClock=yes\nPrivateMounts=yes\n")
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"edge-agent-old-{os.getpid()}.service"
    path.write_text(old)
    try:
        result = run_under_unit_filter(
            path,
            "print(kernel_clock_state())",
            imports="from edge_agent.clocktrust import kernel_clock_state",
        )
    finally:
        path.unlink()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None"


def test_the_boot_id_comes_from_the_unit_when_proc_sys_is_hidden(tmp_path: Path) -> None:
    assert re.search(rf"^Environment={BOOT_ID_ENV}=%b$", UNIT.read_text(), re.MULTILINE)
    assert "ProcSubset=pid" in UNIT.read_text()
    real = BOOT_ID_PATH.read_text().strip()
    hidden = tmp_path / "hidden-by-ProcSubset"
    os.environ[BOOT_ID_ENV] = real.replace("-", "")  # what systemd's %b expands to
    try:
        assert current_boot_id(hidden) == real  # the same form as /proc's: spool ages agree
    finally:
        del os.environ[BOOT_ID_ENV]
    assert current_boot_id(hidden) == ""
