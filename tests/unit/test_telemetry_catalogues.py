"""The telemetry module's catalogue shelf: learning signals, acknowledgements, restarts."""

from __future__ import annotations

from pathlib import Path

from edge_agent.modules.telemetry.batch import LinearScale, SignalColumn, ValueType
from edge_agent.modules.telemetry.catalogues import MAX_KEPT, CatalogueShelf


def column(name: str, kind: ValueType = ValueType.FLOAT) -> SignalColumn:
    return SignalColumn(name, kind, (0,), (1.0,) if kind is ValueType.FLOAT else (1,))


def test_learning_extends_keeps_ids_and_waits_for_the_ack(tmp_path: Path) -> None:
    shelf = CatalogueShelf(tmp_path)
    assert shelf.load() == ""
    first = shelf.learn([column("Speed")], {"Speed": LinearScale(0.01)}, {"Speed": "km/h"})
    assert first is not None
    assert first.entries[0].scale == 0.01
    assert first.entries[0].unit == "km/h"
    assert shelf.writing is None  # v2 until the cloud says yes
    assert shelf.pending == [first]
    assert shelf.learn([column("Speed")], {}, {}) is None  # nothing new
    assert shelf.acknowledge(first.hash)
    assert shelf.writing == first
    second = shelf.learn([column("Speed"), column("Gear", ValueType.INT)], {}, {})
    assert second is not None
    assert second.ids[("Speed", ValueType.FLOAT)] == 0
    assert shelf.writing == first  # still the acknowledged one until the new is
    assert shelf.pending == [second]
    assert not shelf.acknowledge(b"\x01" * 16)  # never sent: ignored


def test_a_restart_keeps_catalogues_and_acks(tmp_path: Path) -> None:
    shelf = CatalogueShelf(tmp_path)
    shelf.load()
    made = shelf.learn([column("Speed")], {}, {})
    assert made is not None
    shelf.acknowledge(made.hash)
    again = CatalogueShelf(tmp_path)
    assert again.load() == ""
    assert again.writing == made
    assert again.catalogues == {made.hash: made}


def test_damaged_files_mean_v2_until_acked_again(tmp_path: Path) -> None:
    shelf = CatalogueShelf(tmp_path)
    shelf.load()
    made = shelf.learn([column("Speed")], {}, {})
    assert made is not None
    shelf.acknowledge(made.hash)
    (tmp_path / f"{made.hash_hex}.eact").write_bytes(b"EACT damaged")
    again = CatalogueShelf(tmp_path)
    assert "left out" in again.load()
    assert again.writing is None
    (tmp_path / "shelf.json").write_text("[1, 2")
    assert "unreadable" in CatalogueShelf(tmp_path).load()


def test_the_shelf_is_bounded(tmp_path: Path) -> None:
    shelf = CatalogueShelf(tmp_path)
    shelf.load()
    for index in range(MAX_KEPT + 3):
        shelf.learn([column(f"S{index}")], {}, {})
    assert len(shelf.catalogues) == MAX_KEPT
    assert len(list(tmp_path.glob("*.eact"))) == MAX_KEPT


def test_a_directory_that_cannot_be_made_means_v2_never_a_crash(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    shelf = CatalogueShelf(blocker / "catalogues")
    assert "cannot be made" in shelf.load()
    assert shelf.writing is None
    try:
        shelf.learn([column("Speed")], {}, {})
    except OSError:
        pass  # the module catches it: the signal travels inline
    else:
        raise AssertionError("a catalogue was kept where no directory can be")


def test_learned_signals_carry_their_vss_path_where_known(tmp_path: Path) -> None:
    from edge_agent.modules.telemetry.batch import parse_catalogue

    shelf = CatalogueShelf(tmp_path, "VIN1")
    columns = [
        SignalColumn("EgoSpeed", ValueType.FLOAT, (0,), (1.0,)),
        SignalColumn("PackCurrent", ValueType.FLOAT, (0,), (1.0,)),  # sign differs: not mapped
        SignalColumn("Vehicle.Cabin.Door.Row1.DriverSide.IsOpen", ValueType.INT, (0,), (1,)),
        SignalColumn("RadarChecksum", ValueType.INT, (0,), (1,)),
    ]
    learned = shelf.learn(columns, {}, {})
    assert learned is not None
    read = parse_catalogue(learned.document, expected_hash=learned.hash)
    assert [entry.vss for entry in read.entries] == [
        "Vehicle.Speed",
        "",
        "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen",  # already a VSS path (CAN reader mapping)
        "",
    ]


def test_every_known_vss_path_is_a_vss_path_and_maps_the_simulator_dbc() -> None:
    from edge_agent.can.vss import VSS_PATH
    from edge_agent.modules.telemetry.vss_paths import KNOWN_PATHS, vss_path

    assert all(
        VSS_PATH.match(path) and path.startswith("Vehicle.") for path in KNOWN_PATHS.values()
    )
    assert vss_path("AcceleratorPedal") == "Vehicle.Chassis.Accelerator.PedalPosition"
    assert vss_path("WheelSpeedRR") == "Vehicle.Chassis.Axle.Row2.Wheel.Right.Speed"
    assert vss_path("Vehicle.") == ""  # not a path
    assert vss_path("Unknown") == ""
