"""CAN databases of every format cantools reads: DBC leniently, KCD, SYM and ARXML as cantools does.

:func:`load_database` is what the CAN reader, replay, the uplink estimator and ``edge-agent db
inspect`` call. The format comes from the suffix; a file whose content is plainly another
format, or no CAN database at all (a binary file, a diagnostics database, an empty one), is
refused in one line that says what it is and which formats are supported. DBC keeps the
lenient loader of :mod:`edge_agent.can.dbc` (field DBCs have flaws that cost one message, not
the file); the XML and SYM formats go through ``cantools.database.load_file``, strictly and,
when only cantools' strict checks fail, once more leniently with a note. A file with an
unknown suffix is read as what its content looks like (DBC when it says nothing).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import cantools
from cantools.database.can import Database

from edge_agent.can.dbc import DbcError, DbcLoadResult, Skipped, load_dbc

# cantools' format names by suffix.
FORMAT_BY_SUFFIX = {".dbc": "dbc", ".kcd": "kcd", ".sym": "sym", ".arxml": "arxml"}
SUFFIX_BY_FORMAT = {name: suffix for suffix, name in FORMAT_BY_SUFFIX.items()}
SUPPORTED_DATABASES = ".dbc (lenient), .kcd, .sym, .arxml"
# Larger than any vehicle database we have met (a whole-vehicle ARXML is tens of MB); past it
# a file is refused before a parser holds it in memory.
MAX_DATABASE_BYTES = 256 * 1024 * 1024
SNIFF_BYTES = 4096
DATABASE = "(database)"


def sniff_database(head: bytes) -> str:
    """What the first bytes of a file look like: "arxml", "kcd", "sym", "dbc", "binary" or ""."""
    if b"\x00" in head:
        return "binary"
    text = head.decode("latin-1")
    if re.search(r"<AUTOSAR\b", text):
        return "arxml"
    if re.search(r"<NetworkDefinition\b", text):
        return "kcd"
    if re.search(r"^\s*FormatVersion\s*=", text, re.MULTILINE):
        return "sym"
    if re.search(r"^\s*(VERSION|NS_|BS_|BU_|BO_)\b", text, re.MULTILINE):
        return "dbc"
    return ""


def load_database(path: str | Path) -> DbcLoadResult:
    """Load the CAN database at ``path`` (:data:`SUPPORTED_DATABASES`); DbcError saying why not."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except FileNotFoundError:
        raise DbcError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DbcError(f"{path}: is a directory, not a CAN database") from None
    except OSError as error:
        raise DbcError(f"{path}: cannot read: {error.strerror or error}") from None
    if size > MAX_DATABASE_BYTES:
        raise DbcError(f"{path}: {size} bytes is more than a CAN database ({MAX_DATABASE_BYTES})")
    named = FORMAT_BY_SUFFIX.get(path.suffix.lower())
    looks = sniff_database(head)
    if looks == "binary" or size == 0:
        what = "an empty file" if size == 0 else "a binary file"
        raise DbcError(f"{path}: not a CAN database ({what}); supported: {SUPPORTED_DATABASES}")
    if named and looks and looks != named:
        raise DbcError(
            f"{path}: it is a {looks.upper()} file, not {named.upper()}: rename it to "
            f"{path.stem}{SUFFIX_BY_FORMAT[looks]}"
        )
    chosen = named or looks or "dbc"
    if chosen == "dbc":
        return load_dbc(path)
    if not looks:
        raise DbcError(
            f"{path}: not a {chosen.upper()} database (no {chosen.upper()} content seen); "
            f"supported: {SUPPORTED_DATABASES}"
        )
    return _load_with_cantools(path, chosen)


def _load_with_cantools(path: Path, database_format: str) -> DbcLoadResult:
    """Load a KCD, SYM or ARXML file: strictly, else leniently with a note; DbcError if neither."""
    strict_error = ""
    logger = logging.getLogger("cantools")
    previous = logger.level
    logger.setLevel(logging.ERROR)  # our one-line report says it better than its warnings
    try:
        for strict in (True, False):
            try:
                database = cantools.database.load_file(
                    path, database_format=database_format, strict=strict
                )
                break
            except Exception as error:
                reason = " ".join(str(error).split()) or type(error).__name__
                if not strict:
                    raise DbcError(
                        f"{path}: not a readable {database_format.upper()} database: {reason}"
                    ) from None
                strict_error = reason
    finally:
        logger.setLevel(previous)
    if not isinstance(database, Database):
        raise DbcError(f"{path}: a diagnostics database, not a CAN database")
    if not database.messages:
        raise DbcError(f"{path}: a {database_format.upper()} database with no CAN message in it")
    result = DbcLoadResult(database, str(path), strict=not strict_error)
    if strict_error:
        result.strict_error = strict_error
        result.notes.append(
            Skipped(DATABASE, f"kept despite a failed strict check: {strict_error}")
        )
    return result
