"""When the wall clock may be believed (policies), and the monotonic-to-wall offset."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.clocktrust import TrustPolicy, WallClockTrust


def flag_file(tmp_path: Path, present: bool) -> Path:
    flag = tmp_path / "synchronized"
    if present:
        flag.touch()
    return flag


@pytest.mark.parametrize(
    ("policy", "flag", "kernel", "wall", "expected"),
    [
        (TrustPolicy.AUTO, True, False, 1.8e9, True),
        (TrustPolicy.AUTO, False, True, 1.8e9, True),
        (TrustPolicy.AUTO, False, False, 1.8e9, False),
        (TrustPolicy.AUTO, True, True, 86_400.0, False),  # synced to 1970? no
        (TrustPolicy.TIMESYNC, False, True, 1.8e9, False),
        (TrustPolicy.KERNEL, True, False, 1.8e9, False),
        (TrustPolicy.ALWAYS, False, False, 1.8e9, True),
        (TrustPolicy.ALWAYS, False, False, 1.0e9, False),
        (TrustPolicy.NEVER, True, True, 1.8e9, False),
    ],
)
def test_trust_policies(
    tmp_path: Path, policy: TrustPolicy, flag: bool, kernel: bool, wall: float, expected: bool
) -> None:
    trust = WallClockTrust(
        policy,
        timesync_flag=flag_file(tmp_path, flag),
        kernel_synchronised=lambda: kernel,
        wall=lambda: wall,
        monotonic=lambda: 100.0,
    )
    assert trust.trusted() is expected
    assert trust.monotonic_to_wall_offset() == ((wall - 100.0) if expected else None)


def test_the_kernel_clock_check_loads_libc_once() -> None:
    # Regression (soak, tracemalloc): every ctypes.CDLL() built new function-pointer classes,
    # and the agent checks the clock every few seconds.
    import gc

    from edge_agent import clocktrust

    clocktrust.kernel_clock_synchronised()
    gc.collect()
    before = sum(1 for o in gc.get_objects() if isinstance(o, type) and o.__name__ == "_FuncPtr")
    results = {clocktrust.kernel_clock_synchronised() for _ in range(200)}
    after = sum(1 for o in gc.get_objects() if isinstance(o, type) and o.__name__ == "_FuncPtr")
    assert len(results) == 1
    assert after == before
