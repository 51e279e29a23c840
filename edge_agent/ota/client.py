"""The TUF client side: refresh and verify metadata, resolve a job's target, check the file.

Metadata goes through python-tuf's ``ngclient.Updater`` (signatures and thresholds, version
rollback, expiry, snapshot/targets lengths and hashes). The target itself is fetched by our
resumable downloader (:mod:`edge_agent.ota.download`) and then verified against the pinned
``TargetFile`` (length and hashes) before anything is installed.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, TargetFile
from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig

from edge_agent.ota.errors import Code, OtaError
from edge_agent.ota.repo import CUSTOM_KEY, target_path

ROOT_FILE = "root.json"


class StallBoundFetcher(FetcherInterface):
    """Fetches metadata with a per-read stall timeout and no proxies' surprises."""

    def __init__(self, stall_timeout_s: float) -> None:
        self.stall_timeout_s = stall_timeout_s

    def _fetch(self, url: str) -> Iterator[bytes]:
        try:
            response = urllib.request.urlopen(url, timeout=self.stall_timeout_s)  # noqa: S310
        except urllib.error.HTTPError as error:
            raise tuf_errors.DownloadHTTPError(str(error.reason), error.code) from None
        except TimeoutError as error:
            raise tuf_errors.SlowRetrievalError(f"no data for {self.stall_timeout_s} s") from error
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError | socket.timeout):
                raise tuf_errors.SlowRetrievalError(str(error.reason)) from error
            raise
        return self._chunks(response)

    def _chunks(self, response: Any) -> Iterator[bytes]:
        with response:
            while True:
                try:
                    chunk = response.read1(64 * 1024)
                except TimeoutError as error:
                    raise tuf_errors.SlowRetrievalError("metadata download stalled") from error
                if not chunk:
                    return
                yield chunk


@dataclass(frozen=True)
class ResolvedTarget:
    """A job's target as the signed targets metadata describes it."""

    info: TargetFile
    url: str
    custom: dict[str, Any]

    def pinned(self) -> dict[str, Any]:
        """What ``state.json`` keeps to verify the file after a restart."""
        return {"path": self.info.path, "url": self.url, **self.info.to_dict()}


def pinned_target(pinned: dict[str, Any]) -> TargetFile:
    """The ``TargetFile`` saved by :meth:`ResolvedTarget.pinned`."""
    fields = {k: v for k, v in pinned.items() if k not in ("path", "url")}
    return TargetFile.from_dict(fields, pinned["path"])


def classify(error: Exception) -> OtaError:
    """Map a python-tuf error to our reason code with a one-line explanation."""
    text = str(error) or type(error).__name__
    if isinstance(error, OtaError):
        return error
    if isinstance(error, tuf_errors.UnsignedMetadataError):
        return OtaError(Code.UNSIGNED_METADATA, f"metadata signature check failed: {text}")
    if isinstance(error, tuf_errors.ExpiredMetadataError):
        return OtaError(Code.EXPIRED_METADATA, f"metadata expired (freeze attack?): {text}")
    if isinstance(error, tuf_errors.BadVersionNumberError):
        if "must be >=" in text or "must be" in text:
            return OtaError(Code.METADATA_ROLLBACK, f"metadata version rollback: {text}")
        return OtaError(Code.METADATA_MISMATCH, f"metadata versions do not match: {text}")
    if isinstance(error, tuf_errors.LengthOrHashMismatchError):
        return OtaError(Code.METADATA_MISMATCH, f"metadata length or hash mismatch: {text}")
    if isinstance(error, tuf_errors.RepositoryError):
        return OtaError(Code.METADATA_ERROR, f"metadata rejected: {text}")
    if isinstance(error, tuf_errors.SlowRetrievalError):
        return OtaError(Code.DOWNLOAD_STALLED, f"metadata download stalled: {text}", retryable=True)
    if isinstance(error, tuf_errors.DownloadLengthMismatchError):
        return OtaError(Code.METADATA_ERROR, f"metadata longer than allowed: {text}")
    if isinstance(error, tuf_errors.DownloadError):
        cause = error.__cause__ or error
        return OtaError(
            Code.DOWNLOAD_FAILED, f"metadata download failed: {cause or text}", retryable=True
        )
    return OtaError(Code.METADATA_ERROR, f"metadata update failed: {type(error).__name__}: {text}")


class TufClient:
    """Refreshes trusted metadata in ``tuf_dir`` and resolves targets (blocking: use a thread)."""

    def __init__(
        self, tuf_dir: Path, metadata_url: str, targets_url: str, stall_timeout_s: float
    ) -> None:
        self.tuf_dir = tuf_dir
        self.metadata_url = metadata_url.rstrip("/") + "/"
        self.targets_url = targets_url.rstrip("/") + "/"
        self.stall_timeout_s = stall_timeout_s

    def trusted(self) -> bool:
        """Whether a trust anchor (root metadata) is installed."""
        return (self.tuf_dir / ROOT_FILE).exists()

    def resolve(self, name: str, version: str, *, path: str | None = None) -> ResolvedTarget:
        """Refresh metadata and return the signed target for ``name`` at ``version``.

        ``path`` names the target when it is not a bundle (a config target, say).
        """
        return self.resolve_path(path or target_path(name, version))

    def updater(self) -> Updater:
        """A python-tuf updater over the trusted metadata, fetching with stall timeouts."""
        return Updater(
            metadata_dir=str(self.tuf_dir),
            metadata_base_url=self.metadata_url,
            target_base_url=self.targets_url,
            fetcher=StallBoundFetcher(self.stall_timeout_s),
            config=UpdaterConfig(max_root_rotations=32),
        )

    def refresh(self, updater: Updater | None = None) -> Updater:
        """Update the top-level metadata (TUF client workflow); OtaError saying why not."""
        if not self.trusted():
            raise OtaError(
                Code.NOT_PROVISIONED,
                f"no trusted root metadata in {self.tuf_dir}; run 'edge-agent ota provision'",
            )
        updater = updater or self.updater()
        try:
            updater.refresh()
        except Exception as error:
            raise classify(error) from None
        return updater

    def resolve_path(self, path: str, updater: Updater | None = None) -> ResolvedTarget:
        """Refresh metadata (unless ``updater`` did) and return the signed target at ``path``."""
        if updater is None:
            updater = self.refresh()
        try:
            info = updater.get_targetinfo(path)
        except Exception as error:
            raise classify(error) from None
        if info is None:
            raise OtaError(
                Code.TARGET_NOT_SIGNED,
                f"target {path} is not in the signed targets metadata (unsigned target)",
            )
        custom = info.custom.get(CUSTOM_KEY, {}) if isinstance(info.custom, dict) else {}
        return ResolvedTarget(info=info, url=self._url(info), custom=custom)

    def _url(self, info: TargetFile) -> str:
        root = Metadata[Root].from_file(str(self.tuf_dir / ROOT_FILE)).signed
        name = info.path
        if root.consistent_snapshot:
            directory, slash, base = name.rpartition("/")
            name = f"{directory}{slash}{next(iter(info.hashes.values()))}.{base}"
        return self.targets_url + name


def verify_file(info: TargetFile, path: Path) -> None:
    """Check ``path`` against the signed length and hashes; OtaError(HASH_MISMATCH) if not."""
    with path.open("rb") as handle:
        try:
            info.verify_length_and_hashes(handle)
        except tuf_errors.LengthOrHashMismatchError as error:
            raise OtaError(Code.HASH_MISMATCH, f"{info.path}: {error}") from None
