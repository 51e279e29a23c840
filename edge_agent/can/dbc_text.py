"""Splitting DBC text into top-level statements, each tagged with the message it belongs to.

The lenient loader (``edge_agent.can.dbc``) reassembles a database from these pieces, one
message at a time, so that a statement cantools rejects costs only that statement or message.
Statements start at a line that is not indented, outside a string; an indented line (``SG_``
under ``BO_``, the ``NS_`` list), an ``SG_`` line after ``BO_`` and a lone keyword after
``NS_`` continue the statement above it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KEYWORDS = frozenset(
    {
        "VERSION",
        "NS_",
        "BS_",
        "BU_",
        "BO_",
        "SG_",
        "EV_",
        "CM_",
        "BA_DEF_",
        "BA_DEF_DEF_",
        "BA_",
        "VAL_",
        "VAL_TABLE_",
        "SIG_VALTYPE_",
        "SIG_GROUP_",
        "SIG_TYPE_REF_",
        "SG_MUL_VAL_",
        "BO_TX_BU_",
        "BA_DEF_REL_",
        "BA_DEF_DEF_REL_",
        "BA_REL_",
        "BA_SGTYPE_",
        "BA_DEF_SGTYPE_",
        "SGTYPE_",
        "SGTYPE_VAL_",
        "ENVVAR_DATA_",
        "CAT_DEF_",
        "CAT_",
        "FILTER",
        "BU_SG_REL_",
        "BU_EV_REL_",
        "BU_BO_REL_",
        "NS_DESC_",
    }
)

_FIRST_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MESSAGE = re.compile(r"BO_\s+(\d+)\s+([A-Za-z_]\w*)?")
# Statements that belong to one message (and maybe one of its signals), with the DBC frame id
# in group 1 and the signal name (when there is one) in group 2.
_ATTACHED = [
    re.compile(r"CM_\s+BO_\s+(\d+)()"),
    re.compile(r"CM_\s+SG_\s+(\d+)\s+(\w+)"),
    re.compile(r'BA_\s+"[^"]*"\s+BO_\s+(\d+)()'),
    re.compile(r'BA_\s+"[^"]*"\s+SG_\s+(\d+)\s+(\w+)'),
    re.compile(r"VAL_\s+(\d+)\s+(\w+)"),
    re.compile(r"SIG_VALTYPE_\s+(\d+)\s+(\w+)"),
    re.compile(r"SIG_TYPE_REF_\s+(\d+)\s+(\w+)"),
    re.compile(r"SG_MUL_VAL_\s+(\d+)\s+(\w+)"),
    re.compile(r"BO_TX_BU_\s+(\d+)()"),
    re.compile(r"SIG_GROUP_\s+(\d+)()"),
    re.compile(r'BA_REL_\s+"[^"]*"\s+BU_SG_REL_\s+\w+\s+SG_\s+(\d+)\s+(\w+)'),
    re.compile(r'BA_REL_\s+"[^"]*"\s+BU_BO_REL_\s+\w+\s+(\d+)()'),
]
_SIGNAL_LINE = re.compile(r"\s*SG_\s+(\w+)")


@dataclass(frozen=True, slots=True)
class Statement:
    """One top-level DBC statement with where it came from and what it belongs to.

    ``frame_id`` is the DBC frame id (bit 31 set for extended ids) of the message the statement
    defines or annotates, None for database-wide statements; ``signal`` names the signal an
    annotation is about; ``name`` is the message name of a ``BO_`` statement.
    """

    keyword: str
    text: str
    line: int
    frame_id: int | None = None
    signal: str = ""
    name: str = ""

    @property
    def is_message(self) -> bool:
        """Whether this is a ``BO_`` message definition (with its ``SG_`` lines)."""
        return self.keyword == "BO_"

    @property
    def line_count(self) -> int:
        """How many lines of the file the statement spans."""
        return self.text.count("\n") + 1

    def describe(self) -> str:
        """A short human name: ``VAL_ table of signal X`` or the keyword."""
        if self.keyword == "VAL_" and self.signal:
            return f"value table (VAL_) of signal {self.signal}"
        if self.signal:
            return f"{self.keyword} of signal {self.signal}"
        return self.keyword

    def without_signals(self, names: set[str]) -> Statement:
        """A copy of this ``BO_`` statement without the ``SG_`` lines of ``names``."""
        kept = [
            line
            for line in self.text.split("\n")
            if not ((match := _SIGNAL_LINE.match(line)) and match.group(1) in names)
        ]
        return Statement(
            self.keyword, "\n".join(kept), self.line, self.frame_id, self.signal, self.name
        )


def _quote_open(line: str, inside: bool) -> bool:
    """Whether a string is still open after ``line``, given whether one was open before it."""
    escaped = False
    for char in line:
        if escaped:
            escaped = False
        elif char == "\\" and inside:
            escaped = True
        elif char == '"':
            inside = not inside
    return inside


def _classify(keyword: str, text: str, line: int) -> Statement:
    if keyword == "BO_":
        match = _MESSAGE.match(text)
        if match:
            return Statement(keyword, text, line, int(match.group(1)), "", match.group(2) or "")
        return Statement(keyword, text, line, None)
    for pattern in _ATTACHED:
        match = pattern.match(text)
        if match:
            return Statement(keyword, text, line, int(match.group(1)), match.group(2))
    return Statement(keyword, text, line)


def split_statements(text: str) -> list[Statement]:
    """Cut DBC ``text`` into its top-level statements, in file order, never failing.

    Text before the first keyword, or a line at the margin that starts with no known
    keyword, becomes a statement of its own (keyword ``?``): loading it fails and it is
    reported, instead of corrupting the statement before it.
    """
    statements: list[Statement] = []
    current: list[str] = []
    keyword = ""
    start = 1
    in_string = False
    for number, line in enumerate(text.splitlines(), start=1):
        word_match = _FIRST_WORD.match(line)
        word = word_match.group(0) if word_match else ""
        starts_statement = (
            not in_string
            and line[:1] not in (" ", "\t", "")
            and not (word == "SG_" and keyword == "BO_")
            and not (keyword == "NS_" and line.strip() in KEYWORDS)
        )
        if starts_statement:
            if current and (keyword or "".join(current).strip()):
                statements.append(_classify(keyword or "?", "\n".join(current), start))
            current, start = [line], number
            keyword = word if word in KEYWORDS else "?"
        else:
            if not current:
                start = number
            current.append(line)
        in_string = _quote_open(line, in_string)
    if current and (keyword or "".join(current).strip()):
        statements.append(_classify(keyword or "?", "\n".join(current), start))
    return [s for s in statements if s.text.strip()]


class Assembly:
    """DBC text built from statements, mapping its line numbers back to the file's."""

    def __init__(self, statements: list[Statement]) -> None:
        self.statements = statements
        self._starts: list[tuple[int, Statement]] = []
        parts: list[str] = []
        line = 1
        for statement in statements:
            self._starts.append((line, statement))
            parts.append(statement.text)
            line += statement.line_count + 1  # a blank line keeps statements apart
        self.text = "\n\n".join(parts) + "\n"

    def file_line(self, line: int) -> int | None:
        """The line of the original file that line ``line`` of this text came from."""
        for start, statement in reversed(self._starts):
            if line >= start:
                offset = line - start
                return statement.line + offset if offset < statement.line_count else None
        return None

    def explain(self, error: BaseException) -> str:
        """One line about ``error``, with line numbers rewritten to the original file's."""
        text = " ".join(str(error).split()).strip("\"' ")
        text = re.sub(r"^DBC:\s*\"?", "", text).strip("\"' ")

        def rewrite(match: re.Match[str]) -> str:
            original = self.file_line(int(match.group(1)))
            return f"line {original}" if original is not None else "near the end"

        text = re.sub(r"line (\d+)", rewrite, text)
        if len(text) > 300:
            text = text[:297] + "..."
        return text or type(error).__name__
