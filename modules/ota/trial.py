"""Start-up recovery and the trial boot: health gate, commit, or automatic rollback.

On every start the module reconciles ``state.json`` with the slots: an attempt cut before
the switch resumes; a switch that never reached the link goes back to INSTALLED; a trial
boot counts itself (a crash loop rolls back after ``max_boot_attempts``) and runs the gate;
a commit or rollback cut half-way is finished.
"""

from __future__ import annotations

import asyncio
import enum
from pathlib import Path

from edge_agent.bus import Bus, OverflowPolicy
from edge_agent.logs import get_logger
from edge_agent.modules.ota.config import GateConfig
from edge_agent.modules.ota.engine import Engine
from edge_agent.ota.errors import Code, OtaError
from edge_agent.ota.gate import HealthGate, spool_probe
from edge_agent.ota.layout import LaunchFailure
from edge_agent.ota.settle import needs_settling, settle
from edge_agent.ota.state import Phase

HEALTH_TOPIC = "agent/health"


class Boot(enum.StrEnum):
    """What the module should do after reconciling on start-up."""

    IDLE = "idle"
    RESUME = "resume"  # run the pipeline from the saved phase
    TRIAL = "trial"  # run the health gate
    RESTARTING = "restarting"  # a restart was requested; do nothing else


class Recovery:
    """Reconciles the state on start-up and runs the trial boot."""

    def __init__(
        self, engine: Engine, gate: GateConfig, bus: Bus, own_module: str, spool_dir: Path
    ) -> None:
        self.engine = engine
        self.gate_config = gate
        self.bus = bus
        self.own_module = own_module
        self.spool_dir = spool_dir
        self.gate: HealthGate | None = None
        self._log = get_logger("edge_agent.modules.ota")

    async def on_start(self) -> Boot:
        """Reconcile and say what to do next."""
        engine = self.engine
        updater = engine.updater
        launch_failure = await asyncio.to_thread(engine.layout.take_launch_failure)
        if launch_failure is not None:
            boot = await self._launch_failed(launch_failure)
            if boot is not None:
                return boot
        if engine.state.read_warning:
            self._log.warning("ota state not fully understood", reason=engine.state.read_warning)
        if needs_settling(engine.state, ab=engine.ab):
            await self._settle()
        state = engine.state
        if state.phase in (
            Phase.DOWNLOADING,
            Phase.DOWNLOADED,
            Phase.VERIFIED,
            Phase.INSTALLING,
            Phase.INSTALLED,
        ):
            return Boot.RESUME
        if state.phase is Phase.SWITCHED:
            active = await asyncio.to_thread(updater.active_slot)
            if active == state.from_slot:
                # Cut between saving SWITCHED and moving the link: not switched after all.
                state.waiting = ""
                await engine.save(Phase.INSTALLED)
                return Boot.RESUME
            running = await asyncio.to_thread(updater.running_slot)
            if running not in (None, state.to_slot):
                engine.restart_agent(f"start from the trial slot {state.to_slot}")
                return Boot.RESTARTING
            state.boot_attempts += 1
            await engine.save()
            limit = self.gate_config.max_boot_attempts
            if state.boot_attempts > limit:
                await self.roll_back(
                    OtaError(
                        Code.BOOT_LOOP,
                        f"trial boot of {state.version} started {state.boot_attempts - 1} "
                        f"times without passing the health gate (limit {limit})",
                    )
                )
                return Boot.RESTARTING
            return Boot.TRIAL
        if not state.finalised:
            if state.phase is Phase.COMMITTED:
                await self._finish_commit()
            elif state.phase is Phase.ROLLED_BACK:
                return await self._finish_rollback()
            elif state.phase is Phase.FAILED:
                await engine.finish_failed()
        elif state.phase is Phase.ROLLED_BACK:
            running = await asyncio.to_thread(updater.running_slot)
            if running not in (None, state.from_slot):
                engine.restart_agent(f"start from the restored slot {state.from_slot}")
                return Boot.RESTARTING
        return Boot.IDLE

    async def _settle(self) -> None:
        """Map a state this version does not understand to one it can finish (settle.py)."""
        engine = self.engine
        active = await asyncio.to_thread(engine.updater.active_slot)
        running = await asyncio.to_thread(engine.updater.running_slot)
        engine.state = settle(engine.state, ab=engine.ab, active=active, running=running)
        settled = engine.state
        self._log.warning("ota state settled", phase=settled.phase.value, reason=settled.reason)
        await engine.save()

    async def _launch_failed(self, failure: LaunchFailure) -> Boot | None:
        """The launch guard restored the previous slot: finish that rollback (if on trial)."""
        engine = self.engine
        state = engine.state
        if state.phase is Phase.SWITCHED:
            state.code, state.reason, state.waiting = failure.code, failure.reason, ""
            state.finalised = False
            await engine.save(Phase.ROLLED_BACK)
            boot = await self._finish_rollback()
        else:
            boot = None  # a marker left over from a rollback already recorded
        await asyncio.to_thread(engine.layout.clear_launch_failure)
        return boot

    async def run_gate(self) -> None:
        """Watch health snapshots until the gate passes (commit) or times out (rollback)."""
        engine = self.engine
        config = self.gate_config
        self.gate = gate = HealthGate(config, own_module=self.own_module)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.timeout_s
        subscription = self.bus.subscribe(
            HEALTH_TOPIC, maxsize=4, overflow=OverflowPolicy.DROP_OLDEST, name="ota.gate"
        )
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    problems = "; ".join(gate.last_problems) or "no health snapshot"
                    await self.roll_back(
                        OtaError(
                            Code.HEALTH_GATE,
                            f"health gate not passed within {config.timeout_s:g} s: {problems}",
                        )
                    )
                    return
                try:
                    async with asyncio.timeout(remaining):
                        message = await subscription.get()
                except TimeoutError:
                    continue
                spool = await asyncio.to_thread(spool_probe, self.spool_dir)
                if not isinstance(message.payload, dict):
                    continue
                if gate.observe(message.payload, loop.time(), spool):
                    await self.commit()
                    return
                waiting = "health gate: " + ("; ".join(gate.last_problems) or "settling")
                if waiting != engine.state.waiting:
                    engine.state.waiting = waiting
                    await engine.save()
        finally:
            self.bus.unsubscribe(subscription)

    async def commit(self) -> None:
        """The trial version passed: COMMITTED, logged, updater told."""
        state = self.engine.state
        state.floor_version = state.version
        state.code = state.reason = state.waiting = ""
        state.finalised = False
        await self.engine.save(Phase.COMMITTED)
        await self._finish_commit()

    async def _finish_commit(self) -> None:
        engine = self.engine
        await engine.record(Phase.COMMITTED)
        await asyncio.to_thread(engine.updater.commit, engine.state.to_slot)
        await asyncio.to_thread(engine.clear_downloads)
        engine.state.finalised = True
        await engine.save()

    async def roll_back(self, error: OtaError) -> None:
        """The trial version failed: ROLLED_BACK, old slot restored, logged, restarted."""
        state = self.engine.state
        state.code, state.reason, state.waiting = error.code.value, error.reason, ""
        state.finalised = False
        await self.engine.save(Phase.ROLLED_BACK)
        await self._finish_rollback()

    async def _finish_rollback(self) -> Boot:
        engine = self.engine
        state = engine.state
        await asyncio.to_thread(engine.updater.rollback, state.from_slot, state.to_slot)
        await engine.record(Phase.ROLLED_BACK)
        state.finalised = True
        await engine.save()
        running = await asyncio.to_thread(engine.updater.running_slot)
        if running != state.from_slot:
            engine.restart_agent(f"rolled back to {state.from_slot} ({state.from_version})")
            return Boot.RESTARTING
        return Boot.IDLE
