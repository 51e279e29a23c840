"""Counters and checksums: learned from traffic or named by a DBC; breaks and forgeries flagged."""

from __future__ import annotations

import hashlib
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.modules.can_ids.alerts import AlertKind
from edge_agent.modules.can_ids.dbc_rules import DbcRules, load_dbc_rules
from edge_agent.modules.can_ids.integrity import CHECKSUMS, CONSISTENT, IntegrityHints
from edge_agent.modules.can_ids.offline import scan, train
from edge_agent.modules.can_ids.profile import (
    EXTENDED_FLAG,
    ProfileError,
    dump_profile,
    parse_profile,
)
from edge_agent.simulator.attacks import AttackKind, mutate

Frame = tuple[float, int, bytes, bool]
KEY = 0x1A4


def sealed(seconds: float, *, algorithm: str | None, seed: int, modulus: int = 16) -> list[Frame]:
    """One 10 ms id: a moving signal in bytes 0..1, a counter in byte 6's low nibble (wrapping
    at ``modulus``), the checksum ``algorithm`` (or an opaque keyed one) in byte 7."""
    rng = random.Random(seed)
    frames: list[Frame] = []
    for n in range(int(seconds / 0.01)):
        payload = bytearray(8)
        payload[0], payload[1] = rng.getrandbits(8), rng.getrandbits(3)
        payload[6] = n % modulus
        if algorithm is None:  # a keyed checksum no known algorithm gives
            payload[7] = (sum(payload[:7]) * 37 + 0x5C) & 0xFF
        else:
            payload[7] = CHECKSUMS[algorithm](bytes(payload), 7, KEY)
        frames.append((100.0 + n * 0.01 + rng.gauss(0, 0.00003), KEY, bytes(payload), False))
    return frames


def alerts_of(frames: list[Frame], profile: object, kind: AlertKind) -> list[float]:
    return [a.t for a in scan(frames, profile).alerts if a.kind is kind]  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", list(CHECKSUMS))
def test_each_known_checksum_is_identified_and_a_forged_byte_flagged(algorithm: str) -> None:
    profile, _ = train(sealed(20.0, algorithm=algorithm, seed=1))
    item = profile.ids[KEY]
    assert item.checksum == [7, 8, algorithm]
    assert item.counter == [48, 4, 16]
    clean = sealed(10.0, algorithm=algorithm, seed=2)
    assert scan(clean, profile).alerts == []
    t, key, data, _ = clean[500]
    clean[500] = (t, key, bytes([data[0] ^ 0x40]) + data[1:], False)  # the sender never sent it
    assert alerts_of(clean, profile, AlertKind.CHECKSUM) == [t]


def test_a_counter_that_wraps_early_is_learned_with_its_modulus() -> None:
    profile, _ = train(sealed(20.0, algorithm="xor", seed=3, modulus=15))
    assert profile.ids[KEY].counter == [48, 4, 15]
    assert scan(sealed(10.0, algorithm="xor", seed=4, modulus=15), profile).alerts == []


def test_an_unknown_checksum_named_by_the_dbc_runs_degraded() -> None:
    rules = DbcRules(hints={KEY: IntegrityHints(counters=((48, 4, 16),), checksum_bytes=(7,))})
    frames = sealed(30.0, algorithm=None, seed=5)
    profile, _ = train(frames, rules=rules)
    assert profile.ids[KEY].checksum == [7, 8, CONSISTENT]
    without_dbc, _ = train(frames)
    assert without_dbc.ids[KEY].checksum is None  # nothing names it, nothing fits: no check
    # A payload seen before, sent again with another checksum byte: flagged.
    replay = list(frames[:200])
    t = replay[-1][0] + 0.01
    forged = frames[150][2][:7] + bytes([frames[150][2][7] ^ 1])
    replay.append((t, KEY, forged, False))
    (checksum,) = [a for a in scan(replay, profile).alerts if a.kind is AlertKind.CHECKSUM]
    assert checksum.t == t
    assert "degraded" in checksum.detail


def test_the_simulator_dbc_names_counters_and_the_radar_checksum() -> None:
    rules = load_dbc_rules("package:edge_agent.simulator/data/vehicle.dbc")
    assert rules.hints[0x0B0] == IntegrityHints(counters=((48, 4, 16),), checksum_bytes=(7,))
    assert rules.hints[0x100].counters == ((48, 4, 16),)
    assert rules.counters == 3  # AebCounter, RadarCounter, EgoMotionCounter
    assert rules.checksums == 1


def test_spoofed_frames_on_time_break_the_counter_and_the_checksum() -> None:
    clean = sealed(60.0, algorithm="inverted-sum-with-id", seed=6)
    profile, _ = train(clean)
    attacked, labels = mutate(
        sealed(60.0, algorithm="inverted-sum-with-id", seed=7),
        AttackKind.SPOOFING,
        windows=4,
        seed=1,
    )
    assert len(labels) == 4
    result = scan(attacked, profile).alerts
    for label in labels:
        kinds = {a.kind for a in result if label.start_s <= a.t <= label.start_s + 0.1}
        assert AlertKind.CHECKSUM in kinds
        assert AlertKind.COUNTER in kinds
    assert not [a for a in result if a.kind is AlertKind.INJECTION]  # timing was kept


def test_profile_fields_name_no_code() -> None:
    profile, _ = train(sealed(20.0, algorithm="sum", seed=8))
    text = dump_profile(profile).replace('"sum"', '"os.system"')
    raw = json.loads(text)
    raw["digest"] = hashlib.sha256(
        json.dumps(raw["profile"], sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()  # a fresh digest: the content check must stand on its own
    with pytest.raises(ProfileError) as caught:
        parse_profile(json.dumps(raw), "p.json")
    assert "checksum must be" in str(caught.value)


def extended_bus(seconds: float, seed: int) -> list[Frame]:
    """A J1939-like bus: three extended ids at 10, 20 and 100 ms."""
    rng = random.Random(seed)
    frames: list[Frame] = []
    for ident, period in ((0x0CF00400, 0.01), (0x18FEF100, 0.02), (0x18FEEE00, 0.1)):
        for n in range(int(seconds / period)):
            data = bytes([rng.getrandbits(8), 0xFF, n & 0xF, 0, 0, 0, 0, 0])
            frames.append(
                (50.0 + n * period + rng.gauss(0, 3e-5), ident | EXTENDED_FLAG, data, False)
            )
    return sorted(frames)


def test_attacks_on_an_extended_bus_use_extended_ids_and_are_flagged() -> None:
    profile, _ = train(extended_bus(60.0, seed=1))
    clean = extended_bus(120.0, seed=2)
    flooded, labels = mutate(clean, AttackKind.FLOODING, windows=3, seed=1)
    assert {label.can_id for label in labels} == {EXTENDED_FLAG}  # extended id 0
    assert labels[0].as_dict()["can_id"] == "0x00000000x"
    flagged = {a.t for a in scan(flooded, profile).alerts if a.kind is AlertKind.FLOODING}
    assert all(any(w.start_s <= t <= w.start_s + 0.1 for t in flagged) for w in labels)
    fuzzed, _ = mutate(clean, AttackKind.FUZZING, windows=3, seed=1)
    new_ids = {key for _, key, _, _ in fuzzed} - {key for _, key, _, _ in clean}
    assert new_ids
    assert all(key & EXTENDED_FLAG for key in new_ids)
    injected, labels = mutate(clean, AttackKind.INJECTION, windows=3, seed=1)
    assert all(label.can_id is not None and label.can_id & EXTENDED_FLAG for label in labels)
    assert {a.kind for a in scan(injected, profile).alerts} >= {AlertKind.INJECTION}


@settings(max_examples=30, deadline=None)
@given(
    payloads=st.lists(st.binary(min_size=0, max_size=8), min_size=64, max_size=160),
    hinted=st.booleans(),
)
def test_any_payloads_learn_a_profile_that_round_trips_and_scans(
    payloads: list[bytes], hinted: bool
) -> None:
    # Structural seeds: every frame of one id, any lengths and contents, with or without a
    # DBC naming a counter and a checksum where the bytes may not even exist.
    frames = [(10.0 + n * 0.01, KEY, data, False) for n, data in enumerate(payloads)]
    hints = IntegrityHints(counters=((60, 4, 16), (0, 16, 65536)), checksum_bytes=(7, 0))
    rules = DbcRules(hints={KEY: hints}) if hinted else None
    profile, _ = train(frames, rules=rules)
    assert parse_profile(dump_profile(profile)) == profile
    scan(frames[::-1] + frames, profile)  # time going backwards too: alerts, never a crash
