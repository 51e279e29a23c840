"""Inputs the long fuzz run (scripts/fuzz) found to crash a parser, kept as regression tests."""

from __future__ import annotations

from edge_agent.can.dbc import DbcError, load_dbc_text

GOOD = 'BO_ 176 RadarObject: 8 RADAR\n SG_ ObjectDistance : 0|16@1+ (0.01,0) [0|250] "m" AGENT\n'


def test_message_block_that_cantools_reads_as_nothing_is_skipped() -> None:
    """A vertical tab in a BO_ line made cantools read the block as no message: IndexError."""
    text = (
        'VERSION "x"\n\nBS_:\n\nBU_: ESC RADAR AGENT\n\n'
        "BO_ 160 AebBrakeRequest: 8\x0bAGENT\n"
        ' SG_ AebStage : 16|4@1+ (1,0) [0|3] "" ESC\n\n'
        f"{GOOD}\n"
        'CM_ "a comment\n'  # and a torn comment, as the fuzzer left it
    )
    try:
        result = load_dbc_text(text, source="<regression>")
    except DbcError:
        return  # a clear error is a documented outcome too
    names = [m.name for m in result.database.messages]
    assert "RadarObject" in names
    assert all(skip.reason for skip in result.skipped)
