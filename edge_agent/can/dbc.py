"""Lenient DBC loading: a bad message, signal or value table is skipped, the rest decodes.

cantools rejects a whole database for one flaw (a ``VAL_`` table naming a signal its message
lacks, two signals sharing bits, a typo in one ``BO_`` block). Vehicle databases collected
from the field have such flaws, and one of them must not cost every other message. So:

1. a strict load of the whole text is tried first: a clean file costs one parse;
2. otherwise the text is cut into top-level statements (``edge_agent.can.dbc_text``) and
   each message is loaded on its own, with the database-wide statements and then its
   annotations (comments, attributes, value tables) added one at a time: whatever cantools
   rejects is left out and reported with the file line and cantools' reason;
3. a message that only fails cantools' strict checks (overlapping signals, for instance) is
   kept when its signals fit in its length (a signal that does not fit is dropped) and it
   can be decoded (cantools cannot decode overlapping signals, the generated decoders of
   ``edge_agent.can.decode`` can), and the leniency is noted as such;
4. the database is then merged from the messages that loaded.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cantools
from cantools.database.can import Database
from cantools.database.can import Message as DbcMessage

from edge_agent.can.dbc_bounds import MAX_DBC_CHARS, screen
from edge_agent.can.dbc_text import Assembly, Statement, split_statements
from edge_agent.can.decode import compile_decoder

DATABASE = "(database)"
# Vector's tools put signals that belong to no message into a message of this name (frame id
# 0xC0000000); cantools discards it, and so do we, with a note.
PLACEHOLDER = "VECTOR__INDEPENDENT_SIG_MSG"
PLACEHOLDER_WHAT = "placeholder for signals assigned to no message"
PLACEHOLDER_NOTE = f"{PLACEHOLDER_WHAT}; discarded, as cantools does"
_PLACEHOLDER_BLOCK = re.compile(rf"^\s*BO_\s+\d+\s+{PLACEHOLDER}\s*:", re.MULTILINE)
_DBC_KEYWORD = re.compile(r"^\s*(VERSION|NS_|BS_|BU_|BO_|SG_|CM_|BA_DEF_|VAL_)\b", re.MULTILINE)
_SKELETON = ("VERSION", "NS_", "BS_", "BU_")
_EMPTY_VERSION = Statement("VERSION", 'VERSION ""', 0)


class DbcError(Exception):
    """The DBC file cannot be read, or not one message in it is usable."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something the loader left out (or, as a note, accepted leniently), and why."""

    message: str
    reason: str


@dataclass
class DbcLoadResult:
    """A leniently loaded database with what was skipped and what was accepted leniently.

    ``strict`` is True when the file passed cantools' strict load unchanged; otherwise
    ``strict_error`` says why it did not.
    """

    database: Database
    source: str = ""
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[Skipped] = field(default_factory=list)
    strict: bool = True
    strict_error: str = ""

    @property
    def message_count(self) -> int:
        """Usable messages."""
        return len(self.database.messages)

    @property
    def signal_count(self) -> int:
        """Usable signals over all usable messages."""
        return sum(len(message.signals) for message in self.database.messages)


def read_dbc_text(path: Path) -> str:
    """Read a DBC file as text: UTF-8 when it is, else cp1252, else Latin-1 (never fails)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DbcError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DbcError(f"{path}: is a directory, not a DBC file") from None
    except OSError as error:
        raise DbcError(f"{path}: cannot read: {error.strerror or error}") from None
    for encoding in ("utf-8", "cp1252"):
        with contextlib.suppress(UnicodeDecodeError):
            return raw.decode(encoding)
    return raw.decode("latin-1")


def load_dbc(path: str | Path) -> DbcLoadResult:
    """Load the DBC file at ``path`` leniently; raise DbcError when nothing in it is usable."""
    path = Path(path)
    return load_dbc_text(read_dbc_text(path), source=str(path))


def load_dbc_text(text: str, *, source: str = "<text>") -> DbcLoadResult:
    """Load DBC ``text`` leniently (see the module docstring); ``source`` names it in errors."""
    if len(text) > MAX_DBC_CHARS:
        raise DbcError(
            f"{source}: {len(text):,} characters is over the {MAX_DBC_CHARS:,} a CAN database "
            "may have here (the largest real ones are a few MiB)"
        )
    text, out_of_bounds = screen(text)
    try:
        result = _load_screened(text, source)
    except DbcError as error:
        if not out_of_bounds:
            raise
        name, reason = out_of_bounds[0]
        raise DbcError(f"{error}; out of bounds: {name}: {reason}") from None
    if out_of_bounds:
        result.skipped[:0] = [Skipped(name, reason) for name, reason in out_of_bounds]
        if result.strict:
            result.strict = False
            result.strict_error = out_of_bounds[0][1]
    return result


def _load_screened(text: str, source: str) -> DbcLoadResult:
    try:
        database = _parse(text, strict=True)
    except Exception as error:
        strict_error = Assembly([Statement("?", text, 1)]).explain(error)
    else:
        if not database.messages:
            raise DbcError(f"{source}: {_why_no_messages(text)}")
        result = DbcLoadResult(database, source)
        if _PLACEHOLDER_BLOCK.search(text):
            result.notes.append(Skipped(PLACEHOLDER, PLACEHOLDER_NOTE))
        return result
    result = _SectionLoader(split_statements(text), source).load()
    result.strict = False
    result.strict_error = strict_error
    return result


def _why_no_messages(text: str) -> str:
    """Why DBC ``text`` that parses holds no message, in words for the user."""
    if _PLACEHOLDER_BLOCK.search(text):
        return f"no message to decode: only the {PLACEHOLDER} {PLACEHOLDER_WHAT}"
    if not _DBC_KEYWORD.search(text):
        return "not a CAN database (no DBC statement in it)"
    return "no message definitions (BO_) found"


def kernel_filters(messages: Iterable[DbcMessage]) -> list[dict[str, Any]]:
    """python-can ``can_filters`` passing exactly the frame ids of ``messages``."""
    return [
        {
            "can_id": message.frame_id,
            "can_mask": 0x1FFFFFFF if message.is_extended_frame else 0x7FF,
            "extended": bool(message.is_extended_frame),
        }
        for message in messages
    ]


def signal_fits(signal: Any, length: int) -> bool:
    """Whether ``signal``'s bits lie inside a message of ``length`` bytes."""
    if signal.byte_order == "little_endian":
        first = signal.start
    else:  # Motorola: the start bit is the most significant bit, in sawtooth numbering
        first = (signal.start // 8) * 8 + (7 - signal.start % 8)
    return bool(signal.length > 0 and first >= 0 and first + signal.length <= length * 8)


def _parse(text: str, *, strict: bool) -> Database:
    # cantools logs warnings of its own while parsing odd files; our report says it better.
    logger = logging.getLogger("cantools")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        database = cantools.database.load_string(text, database_format="dbc", strict=strict)
    finally:
        logger.setLevel(previous)
    if not isinstance(database, Database):  # pragma: no cover - dbc always gives a CAN db
        raise DbcError("not a CAN database")
    return database


class _SectionLoader:
    """Loads a statement list message by message, collecting what had to be left out."""

    def __init__(self, statements: list[Statement], source: str) -> None:
        self.source = source
        self.skipped: list[Skipped] = []
        self.notes: list[Skipped] = []
        self.common = [s for s in statements if s.frame_id is None and not s.is_message]
        self.blocks: list[Statement] = []
        self.annotations: dict[int, list[Statement]] = {}
        seen_ids: dict[int, Statement] = {}
        seen_names: dict[str, Statement] = {}
        placeholder_ids = {s.frame_id for s in statements if s.is_message and s.name == PLACEHOLDER}
        for statement in statements:
            if statement.is_message and statement.name == PLACEHOLDER:
                self.notes.append(
                    Skipped(PLACEHOLDER, f"line {statement.line}: {PLACEHOLDER_NOTE}")
                )
            elif statement.frame_id is not None and statement.frame_id in placeholder_ids:
                continue  # annotations of the placeholder go with it
            elif statement.is_message and statement.frame_id is None:
                self._skip(statement, "unreadable BO_ header (expected 'BO_ ID NAME: LENGTH')")
            elif statement.is_message and statement.frame_id is not None:
                first = seen_ids.get(statement.frame_id) or seen_names.get(statement.name)
                if first is not None:
                    self._skip(statement, f"duplicate of the message at line {first.line}")
                    continue
                seen_ids[statement.frame_id] = statement
                seen_names[statement.name] = statement
                self.blocks.append(statement)
            elif statement.frame_id is not None:
                self.annotations.setdefault(statement.frame_id, []).append(statement)

    def _first_reasons(self) -> str:
        return "; ".join(f"{s.message}: {s.reason}" for s in self.skipped[:3])

    def _skip(self, statement: Statement, reason: str, message: str = "") -> None:
        name = message or statement.name or DATABASE
        self.skipped.append(Skipped(name, f"line {statement.line}: {reason}"))

    def _try(self, statements: list[Statement], *, strict: bool) -> Database | str:
        assembly = Assembly(statements)
        try:
            return _parse(assembly.text, strict=strict)
        except Exception as error:
            return assembly.explain(error)

    def _usable_common(self) -> tuple[list[Statement], Database]:
        """The database-wide statements that load, in file order, and their database."""
        if not self.common:  # cantools cannot parse an empty text
            self.common = [_EMPTY_VERSION]
        loaded = self._try(self.common, strict=True)
        if isinstance(loaded, Database):
            return self.common, loaded
        kept: list[Statement] = []
        for statement in self.common:
            if statement.keyword not in _SKELETON:
                continue
            if isinstance(self._try([*kept, statement], strict=True), Database):
                kept.append(statement)
            else:
                self._skip(statement, f"unusable {statement.keyword} statement; left out")
        for statement in self.common:
            if statement.keyword in _SKELETON:
                continue
            attempt = self._try([*kept, statement], strict=True)
            if isinstance(attempt, Database):
                kept.append(statement)
            else:
                self._skip(statement, f"{statement.describe()} left out: {attempt}")
        kept = kept or [_EMPTY_VERSION]
        final = self._try(kept, strict=True)
        if not isinstance(final, Database):  # pragma: no cover - each piece loaded
            raise DbcError(f"{self.source}: header statements do not load: {final}")
        return kept, final

    def load(self) -> DbcLoadResult:
        """Load every message that can be loaded; raise DbcError when none can."""
        if not self.blocks:
            if self.skipped:
                raise DbcError(f"{self.source}: no usable message ({self._first_reasons()})")
            text = "\n".join(statement.text for statement in self.common)
            if self.notes:  # only the placeholder
                text += f"\nBO_ 3221225472 {PLACEHOLDER}: 0 Vector__XXX"
            raise DbcError(f"{self.source}: {_why_no_messages(text)}")
        common, common_db = self._usable_common()
        accepted = [
            message
            for block in self.blocks
            if (message := self._load_message(common, block)) is not None
        ]
        for frame_id, orphans in self.annotations.items():
            if not any(block.frame_id == frame_id for block in self.blocks):
                for orphan in orphans:
                    self._skip(
                        orphan,
                        f"{orphan.describe()} refers to frame id {frame_id}, "
                        "which no usable BO_ defines",
                    )
        if not accepted:
            raise DbcError(f"{self.source}: no usable message ({self._first_reasons()})")
        database = Database(
            messages=accepted,
            nodes=common_db.nodes,
            buses=common_db.buses,
            version=common_db.version,
            dbc_specifics=common_db.dbc,
            strict=False,
        )
        return DbcLoadResult(database, self.source, self.skipped, self.notes)

    def _load_message(self, common: list[Statement], block: Statement) -> DbcMessage | None:
        """Load one message with as many of its annotations as load; None when it cannot."""
        assert block.frame_id is not None
        annotations = self.annotations.get(block.frame_id, [])
        whole = self._try([*common, block, *annotations], strict=True)
        if isinstance(whole, Database) and whole.messages:
            message: DbcMessage = whole.messages[0]
            return message
        accepted = self._load_block(common, block)
        if accepted is None:
            return None
        if not accepted.database.messages:  # cantools parsed the block as no message at all
            self._skip(block, "not a message definition cantools can read", block.name)
            return None
        dropped = {
            s.name for s in self._signals_of(common, block) if s.name not in accepted.signal_names
        }
        kept: list[Statement] = []
        for annotation in annotations:
            if annotation.signal and annotation.signal in dropped:
                self._skip(
                    annotation, f"{annotation.describe()} left out with its signal", block.name
                )
                continue
            if annotation.signal and annotation.signal not in accepted.signal_names:
                self._skip(
                    annotation,
                    f"{annotation.describe()} left out: message {block.name} has no signal "
                    f"{annotation.signal}",
                    block.name,
                )
                continue
            attempt = self._try(
                [*common, accepted.block, *kept, annotation], strict=accepted.strict
            )
            if isinstance(attempt, Database):
                kept.append(annotation)
                accepted.database = attempt
            else:
                self._skip(annotation, f"{annotation.describe()} left out: {attempt}", block.name)
        message = accepted.database.messages[0]
        return message if isinstance(message, DbcMessage) else None

    def _signals_of(self, common: list[Statement], block: Statement) -> list[Any]:
        loaded = self._try([*common, block], strict=False)
        return list(loaded.messages[0].signals) if isinstance(loaded, Database) else []

    def _load_block(self, common: list[Statement], block: Statement) -> _Block | None:
        """Load the ``BO_`` block alone: strictly, else leniently without misfit signals."""
        strict = self._try([*common, block], strict=True)
        if isinstance(strict, Database):
            return _Block(block, strict, True)
        lenient = self._try([*common, block], strict=False)
        if not isinstance(lenient, Database):
            self._skip(block, f"message left out: {lenient}")
            return None
        message = lenient.messages[0]
        misfits = {s.name for s in message.signals if not signal_fits(s, message.length)}
        for name in sorted(misfits):
            self._skip(
                block, f"signal {name} left out: its bits do not fit in {message.length} bytes"
            )
        if misfits:
            block = block.without_signals(misfits)
            retry = self._try([*common, block], strict=True)
            if isinstance(retry, Database):
                return _Block(block, retry, True)
            lenient = self._try([*common, block], strict=False)
            if not isinstance(lenient, Database) or not lenient.messages[0].signals:
                reason = lenient if isinstance(lenient, str) else "no signal left"
                self._skip(block, f"message left out: {reason}")
                return None
        problem = _undecodable(lenient.messages[0])
        if problem:
            self._skip(block, f"message left out: {strict}; and it cannot be decoded: {problem}")
            return None
        self.notes.append(
            Skipped(block.name, f"line {block.line}: kept despite a failed strict check: {strict}")
        )
        return _Block(block, lenient, False)


def _undecodable(message: DbcMessage) -> str:
    """Why ``message`` cannot be decoded at all ("" when it can)."""
    if compile_decoder(message, {}) is not None:
        return ""
    try:
        message.decode(bytes(message.length), decode_choices=False)
    except Exception as error:
        return " ".join(str(error).split()) or type(error).__name__
    return ""


@dataclass
class _Block:
    """A ``BO_`` block that loaded, its database, and whether it passed the strict checks."""

    block: Statement
    database: Database
    strict: bool

    @property
    def signal_names(self) -> set[str]:
        """Names of the signals that loaded."""
        return {signal.name for signal in self.database.messages[0].signals}
