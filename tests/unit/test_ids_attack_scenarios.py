"""The ``attack-*`` scenarios: a live drive with an attacker, labelled, and caught by the IDS."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edge_agent.modules.can_ids.offline import scan, train
from edge_agent.modules.can_ids.profile import BusProfile
from edge_agent.simulator.attacks import AttackKind, Frame
from edge_agent.simulator.can_io import SimulatorSession
from edge_agent.simulator.rig.ids_bench import ACCEPTED
from edge_agent.simulator.scenario import Category
from edge_agent.simulator.scenarios import SCENARIOS, get_scenario


def drive(name: str, seed: int) -> tuple[list[Frame], SimulatorSession]:
    frames: list[Frame] = []

    def take(message: object) -> None:
        t, key, data = message.timestamp, message.arbitration_id, message.data  # type: ignore[attr-defined]
        frames.append((float(t), int(key), bytes(data), False))

    session = SimulatorSession(get_scenario(name), None, seed=seed, frame_sink=take, epoch=0.0)
    session.run()
    return frames, session


@pytest.fixture(scope="module")
def profile() -> BusProfile:
    clean, _ = drive("following-2s", seed=0)
    learned, _ = train(clean)
    return learned


def test_every_attack_kind_has_a_scenario_in_the_listing() -> None:
    named = {name for name, s in SCENARIOS.items() if s.category is Category.ATTACK}
    assert named == {f"attack-{kind.value}" for kind in AttackKind}


@pytest.mark.parametrize("kind", list(AttackKind))
def test_each_attack_scenario_is_labelled_and_caught_within_100_ms(
    kind: AttackKind, profile: BusProfile
) -> None:
    frames, session = drive(f"attack-{kind.value}", seed=2)
    assert session.attack is not None
    labels = session.attack.labels
    assert [label.kind for label in labels] == [kind, kind]
    alerts = scan(frames, profile).alerts
    for label in labels:
        caught = [
            a.t - label.start_s
            for a in alerts
            if a.kind in ACCEPTED[kind]
            and (label.can_id is None or a.can_id in (None, label.can_id))
            and label.start_s <= a.t <= label.end_s + 1.0
        ]
        assert caught, (label, [a.as_dict() for a in alerts])
        if kind not in (AttackKind.SUSPENSION, AttackKind.MASQUERADE):
            assert min(caught) <= 0.1
    before = min(label.start_s for label in labels)
    assert [a.as_dict() for a in alerts if a.t < before] == []  # quiet until the attack


def test_sim_run_writes_the_labels_of_the_attack(tmp_path: Path) -> None:
    from edge_agent.simulator.cli import main as sim_main

    labels = tmp_path / "labels.json"
    argv = ["run", "--scenario", "attack-dlc-change", "--interface", "virtual"]
    argv += ["--channel", f"ids-labels-{os.getpid()}", "--speed", "1000", "--json"]
    assert sim_main([*argv, "--labels", str(labels)]) == 0
    written = json.loads(labels.read_text())
    assert written["kind"] == "dlc-change"
    assert [w["start_s"] for w in written["windows"]] == [6.0, 14.0]
    assert {w["can_id"] for w in written["windows"]} == {"0x100"}
