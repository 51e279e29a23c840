"""Resumable downloads of a target whose length and hashes are already known (signed).

The file grows in ``NAME.part``; a retry (or a restart after a crash) asks for the rest with
``Range: bytes=N-``. Limits: never more bytes than the signed length (endless-data attack),
a stall timeout (no byte for ``stall_timeout_s``) and an overall deadline (slow retrieval).
Runs in a worker thread; ``cancel`` is checked between chunks.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_agent.ota.errors import Code, OtaError

CHUNK = 64 * 1024
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DownloadLimits:
    """How long a download may stall and take in total."""

    stall_timeout_s: float = 30.0
    deadline_s: float = 3600.0


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener()


def _stalled(limits: DownloadLimits, url: str) -> OtaError:
    return OtaError(
        Code.DOWNLOAD_STALLED,
        f"download of {url} stalled: no data for {limits.stall_timeout_s:g} s",
        retryable=True,
    )


def download(
    url: str,
    part: Path,
    length: int,
    limits: DownloadLimits,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Download ``url`` into ``part`` until it has exactly ``length`` bytes; return ``part``.

    Resumes from the bytes already in ``part``. Raises OtaError: TARGET_TOO_LONG when the
    server sends more than ``length``, DOWNLOAD_STALLED (retryable) on a stall or the
    deadline, DOWNLOAD_FAILED (retryable) when the connection breaks or ends early.
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    if have > length:
        part.unlink()
        have = 0
    if have == length:
        return part
    started = time.monotonic()
    headers = {"Range": f"bytes={have}-"} if have else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (http(s) from config)
    try:
        response = _opener().open(request, timeout=limits.stall_timeout_s)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:
            part.unlink()  # our partial file does not fit the server's: start over next time
        raise OtaError(
            Code.DOWNLOAD_FAILED, f"{url}: HTTP {error.code} {error.reason}", retryable=True
        ) from None
    except TimeoutError:
        raise _stalled(limits, url) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, TimeoutError | socket.timeout):
            raise _stalled(limits, url) from None
        raise OtaError(Code.DOWNLOAD_FAILED, f"{url}: {reason}", retryable=True) from None
    with response:
        if have and response.status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != have:
                part.unlink()
                raise OtaError(
                    Code.DOWNLOAD_FAILED,
                    f"{url}: server answered Range {have}- with "
                    f"{response.headers.get('Content-Range')!r}",
                    retryable=True,
                )
            mode = "ab"
        else:
            have, mode = 0, "wb"  # no Range support: start over
        with part.open(mode) as out:
            try:
                have = _copy(
                    response,
                    out,
                    have=have,
                    length=length,
                    url=url,
                    limits=limits,
                    started=started,
                    progress=progress,
                    cancel=cancel,
                )
            finally:
                out.flush()
                os.fsync(out.fileno())
    if have < length:
        raise OtaError(
            Code.DOWNLOAD_FAILED,
            f"{url}: connection ended after {have} of {length} bytes",
            retryable=True,
        )
    return part


def _copy(
    response: http.client.HTTPResponse,
    out: object,
    *,
    have: int,
    length: int,
    url: str,
    limits: DownloadLimits,
    started: float,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> int:
    write = out.write  # type: ignore[attr-defined]
    while True:
        if cancel is not None and cancel.is_set():
            raise OtaError(Code.INTERRUPTED, "download cancelled", retryable=True)
        if time.monotonic() - started > limits.deadline_s:
            raise OtaError(
                Code.DOWNLOAD_STALLED,
                f"download of {url} too slow: not done within {limits.deadline_s:g} s",
                retryable=True,
            )
        want = min(CHUNK, length - have + 1)  # one byte more than allowed reveals endless data
        try:
            chunk = response.read1(want) if want else b""
        except TimeoutError:
            raise _stalled(limits, url) from None
        except (http.client.HTTPException, OSError) as error:
            raise OtaError(
                Code.DOWNLOAD_FAILED,
                f"{url}: connection broke after {have} bytes ({type(error).__name__})",
                retryable=True,
            ) from None
        if not chunk:
            return have
        if have + len(chunk) > length:
            raise OtaError(
                Code.TARGET_TOO_LONG,
                f"{url}: server sent more than the {length} bytes signed for this target",
            )
        write(chunk)
        have += len(chunk)
        if progress is not None:
            progress(have, length)
