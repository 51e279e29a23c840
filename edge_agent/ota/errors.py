"""Why an OTA attempt was refused or failed: a stable code plus a one-line reason."""

from __future__ import annotations

import enum


class Code(enum.StrEnum):
    """Stable reason codes, reported in status, the install log and ``ota status --json``."""

    BAD_JOB = "bad-job"
    BUSY = "busy"
    QUEUE_FULL = "queue-full"  # dropped under load before it was looked at: send it again
    NOT_PROVISIONED = "not-provisioned"
    UNSIGNED_METADATA = "unsigned-metadata"  # signatures missing, wrong key, below threshold
    METADATA_ROLLBACK = "metadata-rollback"
    METADATA_MISMATCH = "metadata-mismatch"  # mix-and-match: versions/hashes do not agree
    EXPIRED_METADATA = "expired-metadata"  # freeze
    METADATA_ERROR = "metadata-error"
    TARGET_NOT_SIGNED = "target-not-signed"
    TARGET_ROLLBACK = "target-rollback"
    WRONG_HARDWARE = "wrong-hardware"
    BUNDLE_TOO_LARGE = "bundle-too-large"
    TARGET_TOO_LONG = "target-too-long"  # endless data
    HASH_MISMATCH = "hash-mismatch"
    DOWNLOAD_STALLED = "download-stalled"  # slow retrieval
    DOWNLOAD_FAILED = "download-failed"
    UNSAFE_ARCHIVE = "unsafe-archive"
    BAD_BUNDLE = "bad-bundle"
    INSTALL_FAILED = "install-failed"
    HEALTH_GATE = "health-gate"
    BOOT_LOOP = "boot-loop"
    LAUNCH_FAILED = "launch-failed"  # the trial slot never started (edge-agent-launch-guard)
    SLOT_DAMAGED = "slot-damaged"  # the trial slot's files differ from its signed file list
    STATE_UNREADABLE = "state-unreadable"  # state.json damaged: started from idle
    STATE_UNKNOWN = "state-unknown"  # state.json not understood mid-attempt: settled by slots
    INTERRUPTED = "interrupted"
    CONFIG_REFUSED = "config-refused"  # a signed config the agent's validation refused


class OtaError(Exception):
    """An expected OTA failure: ``code`` says which, the message says what and where."""

    def __init__(self, code: Code, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable

    @property
    def reason(self) -> str:
        """The one-line reason shown to operators."""
        return str(self)
