"""Refusals in the install log, rate-limited: a flood of bad or busy jobs cannot fill the disk.

Each refused job is still answered on ``ota/status``; the install log records at most
``per_window`` refusals per ``window_s`` and counts the rest into one summary line
(``result = "refusals-suppressed"``, with the count and the last job id) written when the
window is over. Refusal lines are not fsynced: they record what was turned away, nothing a
restart depends on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from edge_agent.ota.errors import OtaError
from edge_agent.ota.state import InstallLog

PER_WINDOW = 10
WINDOW_S = 60.0


class RefusalLog:
    """Writes refusals into ``log``, at most ``per_window`` per ``window_s`` (see module doc).

    Thread-safe (the engine writes from worker threads); ``clock`` is monotonic seconds.
    """

    def __init__(
        self,
        log: InstallLog,
        *,
        per_window: int = PER_WINDOW,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.per_window = per_window
        self.window_s = window_s
        self.clock = clock
        self.written = 0
        self.suppressed = 0
        self.suppressed_total = 0
        self._window_start = clock()
        self._last_job = ""
        self._lock = threading.Lock()

    def record(self, job_id: str, old_version: str, new_version: str, error: OtaError) -> bool:
        """Log one refusal unless the window's quota is spent; return whether it was written."""
        with self._lock:
            self._roll_window()
            if self.written >= self.per_window:
                self.suppressed += 1
                self.suppressed_total += 1
                self._last_job = job_id
                return False
            self.written += 1
            self.log.append(
                job_id=job_id,
                old_version=old_version,
                new_version=new_version,
                result="refused",
                code=error.code.value,
                reason=error.reason,
                durable=False,
            )
            return True

    def flush(self, *, force: bool = False) -> None:
        """Write the summary of a finished window (``force``: of the current one, e.g. at stop)."""
        with self._lock:
            if force:
                self._summarise()
            else:
                self._roll_window()

    def _roll_window(self) -> None:
        if self.clock() - self._window_start < self.window_s:
            return
        self._summarise()
        self._window_start = self.clock()
        self.written = 0

    def _summarise(self) -> None:
        if not self.suppressed:
            return
        self.log.append(
            job_id=self._last_job,
            old_version="",
            new_version="",
            result="refusals-suppressed",
            reason=f"{self.suppressed} more refusals in {self.window_s:g} s not logged one by one",
            suppressed=self.suppressed,
            durable=False,
        )
        self.suppressed = 0
