"""The errors a batch decoder raises: one family, one line each, never anything else."""

from __future__ import annotations


class BatchFormatError(ValueError):
    """The bytes are not a valid batch of a format version this decoder knows.

    Every failure of ``decode_batch`` is one of its subclasses, with a one-line message that
    says what was wrong and where.
    """

    def __init__(self, message: str) -> None:
        # Messages quote parts of untrusted input: keep them on one line whatever it holds.
        super().__init__(" ".join(message.splitlines()))


class NotABatch(BatchFormatError):
    """The bytes do not start with the batch magic (not a batch at all)."""


class UnsupportedBatchVersion(BatchFormatError):
    """A batch of a format version or compression this decoder does not know."""


class TruncatedBatch(BatchFormatError):
    """The batch ends before its header, compressed frame or payload says it should."""


class OversizedBatch(BatchFormatError):
    """The batch is, or declares itself, larger than the decoder's limits."""


class CorruptBatch(BatchFormatError):
    """The compressed frame or the msgpack inside it cannot be read (damaged or forged)."""


class MalformedBatch(BatchFormatError):
    """The payload is readable but does not follow the batch schema."""


class UnknownCatalogue(BatchFormatError):
    """A version-3 batch names a signal catalogue this decoder was not given.

    Nothing is wrong with the batch: keep it until the catalogue ``catalogue_hash`` (16
    bytes) arrives, then decode it again.
    """

    def __init__(self, message: str, catalogue_hash: bytes) -> None:
        super().__init__(message)
        self.catalogue_hash = catalogue_hash


class MalformedCatalogue(BatchFormatError):
    """A signal catalogue document that cannot be read, breaks a limit or fails its hash."""
