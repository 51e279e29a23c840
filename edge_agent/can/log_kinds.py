"""The kinds of CAN log we read, by suffix, and how to tell them by their first bytes."""

from __future__ import annotations

import re

from edge_agent.can.gzipped import GZIP_SIGNATURE

BLF_SIGNATURE = b"LOGG"
SQLITE_SIGNATURE = b"SQLite format 3\x00"
MF4_SIGNATURE = b"MDF     "
# The log kinds by suffix: python-can's LogReader table, with candump .log read by our own
# tolerant parser (python-can's stops at the first odd line) and .mf4 needing asammdf.
KIND_BY_SUFFIX = {
    ".log": "candump",
    ".asc": "ASC",
    ".blf": "BLF",
    ".csv": "CSV",
    ".db": "SQLite",
    ".mf4": "MF4",
    ".trc": "TRC",
}
SUFFIX_BY_KIND = {kind: suffix for suffix, kind in KIND_BY_SUFFIX.items()}
# python-can reads a SQLite log by file name only, so it has no .db.gz (nor do we).
UNCOMPRESSIBLE = frozenset({".db"})
SUPPORTED = (
    ".log (candump), .asc, .blf, .csv, .db (SQLite), .trc, .mf4 (with asammdf), "
    "each but .db also as .gz"
)
# Compressed bytes read to see what a .gz file holds.
SNIFF_COMPRESSED_BYTES = 4096


def sniff(head: bytes) -> str:
    """What the first bytes of a file look like: a kind of :data:`KIND_BY_SUFFIX`, "gzip" or ""."""
    for signature, kind in (
        (BLF_SIGNATURE, "BLF"),
        (SQLITE_SIGNATURE, "SQLite"),
        (MF4_SIGNATURE, "MF4"),
        (GZIP_SIGNATURE, "gzip"),
    ):
        if head.startswith(signature):
            return kind
    text = head.decode("latin-1").lstrip()
    if re.match(r"\(\d", text):
        return "candump"
    if re.match(r"(?i)(date|base|internal events|begin triggerblock)", text):
        return "ASC"
    if re.match(r"(?i);\$FILEVERSION|;#{6}", text):
        return "TRC"
    if re.match(r"(?i)timestamp,arbitration_id", text):
        return "CSV"
    return ""
