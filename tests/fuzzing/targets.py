"""Every parser and codec that takes outside input, as a fuzz target with its documented outcomes.

A target takes bytes (what an attacker or a broken device controls) and either returns or
raises one of its documented error types; anything else is a bug. Seeds are valid inputs that
the fuzzer mutates, so the search starts close to the interesting code paths; structural seeds
(``structure.py``: deep nesting, huge sizes, extended CAN ids) are the shapes mutations never
reach.
"""

from __future__ import annotations

import io
import json
import random
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import can

from edge_agent.can.dbc import DbcError, load_dbc, load_dbc_text
from edge_agent.can.decode import DecodedMessage, DecodeOutcome, FrameDecoder
from edge_agent.can.logs import LogFormatError, LogStats, open_log, parse_candump_line
from edge_agent.can.resources import resolve_data_path
from edge_agent.config import ConfigError, validate_config
from edge_agent.config.desired import parse_desired, validate_desired
from edge_agent.config.loader import MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH
from edge_agent.modules.cloud_link.commands import MalformedRequest, parse_request
from edge_agent.modules.ota.job import parse_job
from edge_agent.modules.telemetry.batch import (
    BatchFormatError,
    ClockQuality,
    Sample,
    decode_batch,
    encode_samples,
)
from edge_agent.modules.telemetry.batch.frame import seal, unseal
from edge_agent.ota.bundle import read_manifest
from edge_agent.ota.errors import OtaError
from edge_agent.ota.extract import extract_payload
from edge_agent.untrusted import UntrustedDataError, load_toml_bounded
from fuzzing import structure

VEHICLE_DBC = resolve_data_path("package:edge_agent.simulator/data/vehicle.dbc")


@dataclass
class Target:
    """One fuzz target: a function of bytes, the errors it may raise, and seed inputs.

    ``seeds`` are valid inputs; ``structural`` builds the structural seeds (large, so built
    only when asked for).
    """

    name: str
    run: Callable[[bytes], object]
    allowed: tuple[type[BaseException], ...]
    seeds: list[bytes] = field(default_factory=list)
    structural: Callable[[], list[bytes]] = list


def _frame_decoder() -> FrameDecoder:
    return FrameDecoder(load_dbc(VEHICLE_DBC).database, bus="fuzz")


_DECODER: FrameDecoder | None = None


def can_frame(data: bytes) -> object:
    """Bytes -> a CAN frame (id, flags, DLC, payload) -> the project DBC's decoder.

    Byte 2's bits: 1 error frame, 2 remote frame, 4 extended id (then bytes 3-6 are the id,
    big-endian, not masked to 29 bits: a log or a UDP bus can carry any number).
    """
    global _DECODER  # noqa: PLW0603 - built once, the DBC load is the slow part
    if _DECODER is None:
        _DECODER = _frame_decoder()
    if len(data) < 3:
        return None
    ids = sorted(_DECODER.codecs)
    extended = bool(data[2] & 4)
    payload = data[7:] if extended else data[3:]
    if extended:
        arbitration_id = int.from_bytes(data[3:7], "big")
    elif data[1] & 1:
        arbitration_id = ids[data[0] % len(ids)]
    else:
        arbitration_id = int.from_bytes(data[:2], "big") & 0x7FF
    frame = can.Message(
        arbitration_id=arbitration_id,
        data=payload[:64],
        is_extended_id=extended,
        is_error_frame=bool(data[2] & 1),
        is_remote_frame=bool(data[2] & 2),
        is_fd=len(payload) > 8,
        check=False,
    )
    result = _DECODER.decode(frame)
    assert isinstance(result, (DecodedMessage, DecodeOutcome)), result
    return result


def dbc_text(data: bytes) -> object:
    """Bytes -> DBC text -> the lenient loader."""
    return load_dbc_text(data.decode("utf-8", errors="replace"), source="<fuzz>")


def candump_line(data: bytes) -> object:
    """Bytes -> one candump .log line -> the parser."""
    return parse_candump_line(data.decode("utf-8", errors="replace"))


def batch(data: bytes) -> object:
    """Bytes -> the batch decoder (format v1 and v2)."""
    return decode_batch(data)


def batch_envelope(data: bytes) -> object:
    """Bytes -> a sealed v2 frame around them (valid zstd, right checksum) -> the decoder.

    Mutated bytes inside a real batch mostly fail its zstd checksum; this target starts past
    the frame, so the msgpack envelope and column decoders (Rice-packed columns) see them.
    """
    return decode_batch(seal(data, version=2))


def config_toml(data: bytes) -> object:
    """Bytes -> the config loader's bounded TOML parser -> validation (every module's model)."""
    try:
        document = load_toml_bounded(data, max_bytes=MAX_CONFIG_BYTES, max_depth=MAX_CONFIG_DEPTH)
    except UntrustedDataError:
        return None
    return validate_config(document)


_BASE = validate_config({"agent": {"vehicle_id": "fuzz-1"}, "modules": {"heartbeat": {}}})


def desired_state(data: bytes) -> object:
    """Bytes -> an MQTT desired-state payload -> parsing and full validation."""
    return validate_desired(_BASE, parse_desired(data))


def cloud_command(data: bytes) -> object:
    """Bytes -> an MQTT command request (``commands/<name>``) -> parsing and validation."""
    return parse_request(data)


def ota_job(data: bytes) -> object:
    """Bytes -> an OTA job payload from ``ota/jobs`` -> validation."""
    return parse_job(data)


_SCRATCH = Path(tempfile.mkdtemp(prefix="edge-agent-fuzz-"))


def ota_bundle(data: bytes) -> object:
    """Bytes -> a bundle archive on disk -> manifest reading, member scan and extraction."""
    archive = _SCRATCH / "bundle.tar"
    archive.write_bytes(data)
    destination = _SCRATCH / "slot"
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir()
    read_manifest(archive)
    return extract_payload(archive, destination, max_bytes=1 << 20)


def blf_log(data: bytes) -> object:
    """Bytes -> a .blf file -> the bounded BLF reader and python-can's frame decoding."""
    path = _SCRATCH / "drive.blf"
    path.write_bytes(data)
    stats = LogStats()
    return sum(1 for _ in open_log(path, stats)), stats.malformed


def _seed_blf() -> bytes:
    path = _SCRATCH / "seed.blf"
    writer = can.BLFWriter(str(path), max_container_size=256)
    for number in range(6):
        writer.on_message_received(
            can.Message(timestamp=float(number), arbitration_id=0x100 + number, data=bytes(8))
        )
    writer.on_message_received(
        can.Message(timestamp=7.0, arbitration_id=0x1ABCDEF, is_extended_id=True, data=b"x")
    )
    writer.stop()
    return path.read_bytes()


_SEED_MANIFEST = json.dumps({"version": "1.2.3", "hardware_ids": ["pi4"]}).encode()


def _seed_bundle() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, body in (
            ("manifest.json", _SEED_MANIFEST),
            ("payload/bin/edge-agent", b"#!/bin/sh\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def _seed_packed_batch() -> bytes:
    noise = random.Random(7)
    samples = [
        Sample("Accel", 100.0 + i * 0.01, 1.8e9 + i * 0.01, 1500 + round(noise.gauss(0, 30)))
        for i in range(40)
    ]
    return encode_samples(
        samples, vehicle_id="v", stream="s", sequence=2, clock=ClockQuality.TRUSTED
    )


def _seed_batch() -> bytes:
    samples = [
        Sample("EgoSpeed", 100.0 + i * 0.01, 1.8e9 + i * 0.01, 50.0 + i * 0.1) for i in range(20)
    ]
    samples += [Sample("Gear", 100.0 + i, 1.8e9 + i, "D") for i in range(3)]
    return encode_samples(
        samples, vehicle_id="v", stream="s", sequence=1, clock=ClockQuality.TRUSTED
    )


def targets() -> list[Target]:
    """All fuzz targets with their seeds."""
    dbc_seed = VEHICLE_DBC.read_bytes()
    return [
        Target(
            "can-frame",
            can_frame,
            (),
            [bytes([1, 1, 0]) + bytes(8), bytes(16)],
            structure.can_frame_structures,
        ),
        Target(
            "dbc",
            dbc_text,
            (DbcError,),
            [dbc_seed, dbc_seed[: len(dbc_seed) // 2]],
            structure.dbc_structures,
        ),
        Target(
            "candump-line",
            candump_line,
            (ValueError,),  # documented: "raise ValueError saying why not"
            [
                b"(1436509052.249713) vcan0 123#DEADBEEF",
                b"(1.0) can1 1F334455#R",
                b"(2.5) vcan0 0B0##1AA",
            ],
            structure.candump_structures,
        ),
        Target(
            "batch",
            batch,
            (BatchFormatError,),
            [_seed_batch(), _seed_packed_batch()],
            lambda: [seal(body, version=2) for body in structure.msgpack_structures()],
        ),
        Target(
            "batch-envelope",
            batch_envelope,
            (BatchFormatError,),
            [unseal(_seed_packed_batch()), unseal(_seed_batch())],
            structure.msgpack_structures,
        ),
        Target(
            "config",
            config_toml,
            (ConfigError,),
            [b'[agent]\nvehicle_id = "v"\n[modules.heartbeat.config]\ninterval_s = 2\n'],
            lambda: structure.toml_structures(b'[agent]\nvehicle_id = "v"\n'),
        ),
        Target(
            "desired-state",
            desired_state,
            (ConfigError,),
            [
                json.dumps(
                    {"version": 1, "modules": {"heartbeat": {"config": {"interval_s": 1}}}}
                ).encode()
            ],
            lambda: structure.json_structures({"version": 1}, "modules"),
        ),
        Target(
            "cloud-command",
            cloud_command,
            (MalformedRequest,),
            [
                b'{"id": "c-1"}',
                b'{"id": "c-2", "args": {"level": "debug"}, "timeout_s": 2.5}',
            ],
            lambda: structure.json_structures({"id": "c-1"}, "args"),
        ),
        Target(
            "ota-job",
            ota_job,
            (OtaError,),
            [b'{"id": "job-1", "target": "edge-agent", "version": "2.0.0"}'],
            lambda: structure.json_structures({"id": "job-1", "target": "edge-agent"}, "version"),
        ),
        Target(
            "ota-bundle",
            ota_bundle,
            (OtaError,),
            [_seed_bundle()],
            lambda: structure.tar_structures(_SEED_MANIFEST),
        ),
        Target(
            "blf-log",
            blf_log,
            (LogFormatError,),
            [_seed_blf()],
            lambda: structure.blf_structures(_seed_blf()),
        ),
    ]


def by_name() -> dict[str, Target]:
    """Targets keyed by name."""
    return {target.name: target for target in targets()}


def repository_root() -> Path:
    """The project's root folder."""
    return Path(__file__).resolve().parents[2]
