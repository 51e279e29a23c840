"""Settling an OTA state this version does not understand, from what the slots show.

``state.json`` written by another version (a newer one that was rolled back, a later format)
can name a phase this version does not know, or carry values it cannot read, in the middle
of an attempt. Nothing in it can then be trusted to finish the attempt, but the slots can:
which slot ``current`` points at and which one this process runs from. The rule keeps the
OTA invariant "after a switch, every failure ends in a rollback to a slot that ran before":

============================================  =============================================
what the slots show                           settled as
============================================  =============================================
no usable slot pair (or no ``current``)       IDLE: nothing is touched; the vehicle keeps
                                              running what ``current`` runs
``current`` on the attempt's new slot         SWITCHED: a trial boot the health gate must
                                              confirm (commit) or it is rolled back
``current`` on the old slot, this process     ROLLED_BACK: finish the rollback (log it,
runs the new one                              restart into the old slot)
``current`` on the old slot                   FAILED: the attempt is abandoned; the new slot
                                              is wiped, ``current`` is never touched
============================================  =============================================

With RAUC (no slot pair of ours) a state still booted from its old slot is FAILED, anything
else SWITCHED (the gate decides). See docs/ota.md, "State written by another version".
"""

from __future__ import annotations

import dataclasses

from edge_agent.ota.errors import Code
from edge_agent.ota.layout import SLOTS
from edge_agent.ota.state import OtaState, Phase


def needs_settling(state: OtaState, *, ab: bool) -> bool:
    """Whether ``state`` cannot be finished as read (unknown phase, or no usable slot pair)."""
    if state.phase is Phase.UNKNOWN:
        return True
    if not ab or not (state.in_progress or not state.finalised) or state.phase is Phase.IDLE:
        return False
    return not _slot_pair(state)


def settle(state: OtaState, *, ab: bool, active: str | None, running: str | None) -> OtaState:
    """A copy of ``state`` in a phase this version can finish (unchanged if it needs none).

    ``active`` is the slot that starts next (``current``), ``running`` the one this process
    was started from. The code becomes ``state-unknown`` and the reason says what was not
    understood and what was decided.
    """
    if not needs_settling(state, ab=ab):
        return state
    what = state.read_warning or (
        f"slots {state.from_slot!r} -> {state.to_slot!r} of phase {state.phase.value} "
        "are not a slot pair"
    )
    if ab and (not _slot_pair(state) or active not in (state.from_slot, state.to_slot)):
        phase, finalised = Phase.IDLE, True
        decided = f"nothing to finish; staying on slot {active or 'none'}"
    elif (ab and active == state.to_slot) or (not ab and running not in (None, state.from_slot)):
        phase, finalised = Phase.SWITCHED, False
        decided = "treated as a trial boot (the health gate commits it or it is rolled back)"
    elif ab and running == state.to_slot:
        phase, finalised = Phase.ROLLED_BACK, False
        decided = f"finishing the rollback to slot {state.from_slot}"
    else:
        phase, finalised = Phase.FAILED, False
        decided = f"attempt abandoned; staying on slot {active or state.from_slot or 'booted'}"
    return dataclasses.replace(
        state,
        phase=phase,
        finalised=finalised,
        waiting="",
        code=Code.STATE_UNKNOWN.value,
        reason=f"{what}; {decided}",
        read_warning=state.read_warning or what,
    )


def _slot_pair(state: OtaState) -> bool:
    return state.from_slot in SLOTS and state.to_slot in SLOTS and state.from_slot != state.to_slot
