"""``edge-agent bench batch``: bytes per sample of the batch formats against row JSON/msgpack.

The data is a synthetic but CAN-shaped drive (seeded, so every run sees the same bytes):
DBC-scaled signals at 1 to 100 Hz sharing their frame's kernel timestamp (100 us jitter),
float32 IMU values, float64 GNSS coordinates, an enum string and a bool. Telemetry, which
writes the batch format, contributes it (entry-point group ``edge_agent.benchmarks``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import struct
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgpack
import zstandard

from edge_agent.bench.report import machine
from edge_agent.modules.telemetry.batch import (
    MICROSECONDS,
    MILLISECONDS,
    Batch,
    BatchFormatError,
    ClockQuality,
    LinearScale,
    Sample,
    build_batch,
    decode_batch,
    encode_batch,
)
from edge_agent.modules.telemetry.batch.catalogue import Catalogue, CatalogueEntry
from edge_agent.modules.telemetry.batch.columns import differences
from edge_agent.modules.telemetry.batch.frame import HEADER, MAGIC, seal, unseal

WALL_BASE = 1_760_000_000.0
Generator = Callable[[float], float | int | bool | str]


def synthetic_drive(
    seconds: float = 10.0, seed: int = 7
) -> tuple[list[Sample], dict[str, LinearScale]]:
    """Samples of a seeded synthetic drive, and the DBC scales of its scaled signals."""
    rng = random.Random(seed)
    samples: list[Sample] = []
    scales: dict[str, LinearScale] = {}

    def wave(base: float, amplitude: float, period: float, noise: float) -> Generator:
        return lambda t: base + amplitude * math.sin(2 * math.pi * t / period) + rng.gauss(0, noise)

    def frame(hertz: float, signals: list[tuple[str, Generator, float | None]]) -> None:
        for index in range(int(seconds * hertz)):
            t = (index + 0.5) / hertz + rng.gauss(0, 1e-4)
            for name, generate, scale in signals:
                value = generate(t)
                if scale is not None:  # what cantools returns: raw * scale + offset
                    scales[name] = LinearScale(scale)
                    value = round(float(value) / scale) * scale
                samples.append(Sample(name, 1000.0 + t, WALL_BASE + t, value))

    def float32(t: float) -> float:
        return float(struct.unpack("<f", struct.pack("<f", rng.gauss(0, 0.3)))[0])

    frame(100, [("VehicleSpeed", wave(50, 10, 30, 0.02), 0.01)])
    frame(100, [(n, wave(0, 0.8, 7, 0.05), 0.001) for n in ("LongAccel", "LatAccel")])
    frame(100, [("YawRate", wave(0, 2, 9, 0.1), 0.01), ("Steering", wave(0, 15, 11, 0.2), 0.1)])
    frame(50, [(f"WheelSpeed{w}", wave(50, 10, 30, 0.05), 0.01) for w in ("FL", "FR", "RL", "RR")])
    frame(
        20, [("EngineSpeed", wave(2000, 300, 13, 5), 0.25), ("Throttle", wave(30, 10, 6, 0.5), 0.4)]
    )
    frame(
        20,
        [("ObjectDistance", wave(40, 20, 17, 0.3), 0.05), ("RelSpeed", wave(0, 3, 8, 0.1), 0.01)],
    )
    frame(10, [("Gear", lambda t: "D" if t < seconds * 0.8 else "N", None)])
    frame(10, [("BrakePedal", lambda t: int(t * 2) % 3 == 0, None)])
    frame(10, [("CoolantTemp", lambda t: 90 + int(t / 4), None)])
    frame(1, [("Odometer", lambda t: 12345.6 + t * 0.014, 0.1)])
    frame(10, [("Latitude", lambda t: 48.137154 + t * 1.1e-5 + rng.gauss(0, 1e-7), None)])
    frame(10, [("Longitude", lambda t: 11.576124 + t * 1.7e-5 + rng.gauss(0, 1e-7), None)])
    frame(100, [(f"Imu{axis}", float32, None) for axis in ("AccX", "AccY", "AccZ")])
    samples.sort(key=lambda sample: sample.monotonic)
    return samples, scales


def _per_sample(data: bytes, count: int) -> float:
    return round(len(data) / count, 3)


def _plain_columns(samples: list[Sample], resolution: int) -> bytes:
    """Columnar msgpack with float64 values and delta timestamps, no value encodings."""
    columns: dict[str, tuple[list[int], list[object]]] = {}
    for sample in samples:
        ticks, values = columns.setdefault(sample.signal, ([], []))
        ticks.append(round((sample.wall - WALL_BASE) * resolution))
        values.append(sample.value)
    packed: bytes = msgpack.packb(
        [{"name": n, "t": differences(t), "v": v} for n, (t, v) in columns.items()]
    )
    return packed


def compare_encodings(seconds: float = 10.0) -> dict[str, Any]:
    """Compressed bytes per sample of each candidate layout on the synthetic drive."""
    samples, scales = synthetic_drive(seconds)
    count = len(samples)
    zstd = zstandard.ZstdCompressor(level=3)
    rows = [[s.wall, s.signal, s.value] for s in samples]
    common: dict[str, Any] = {"vehicle_id": "bench", "stream": "chassis", "sequence": 0}
    trusted = ClockQuality.TRUSTED
    in_ms = build_batch(samples, clock=trusted, resolution=MILLISECONDS, **common)
    in_us = build_batch(samples, clock=trusted, resolution=MICROSECONDS, **common)
    return {
        "samples": count,
        "signals": len(in_ms.signals),
        "json_rows_zstd": _per_sample(zstd.compress(json.dumps(rows).encode()), count),
        "msgpack_rows_zstd": _per_sample(zstd.compress(msgpack.packb(rows)), count),
        "columns_float64_ms_zstd": _per_sample(
            zstd.compress(_plain_columns(samples, MILLISECONDS)), count
        ),
        "v1_ms_auto_scales": _per_sample(encode_batch(in_ms, pack=False), count),
        "v1_ms_dbc_scales": _per_sample(encode_batch(in_ms, scales=scales, pack=False), count),
        "v1_us_dbc_scales": _per_sample(encode_batch(in_us, scales=scales, pack=False), count),
        "v2_ms_auto_scales": _per_sample(encode_batch(in_ms), count),
        "v2_ms_dbc_scales": _per_sample(encode_batch(in_ms, scales=scales), count),
        "v2_us_dbc_scales": _per_sample(encode_batch(in_us, scales=scales), count),
        "v3_ms_dbc_scales": _per_sample(
            encode_batch(in_ms, scales=scales, catalogue=_catalogue(in_ms, scales)), count
        ),
        "catalogue_bytes": len(_catalogue(in_ms, scales).document),
    }


def _catalogue(batch: Batch, scales: Mapping[str, LinearScale]) -> Catalogue:
    """The catalogue the agent would have the cloud acknowledge for this batch's signals."""
    return Catalogue.of(
        (
            CatalogueEntry(
                column.name,
                column.type,
                scale=scales[column.name].scale if column.name in scales else None,
                offset=scales[column.name].offset if column.name in scales else None,
            )
            for column in batch.signals
        ),
        vehicle=batch.vehicle_id,
    )


def measure_rates(
    runs: int, seconds: float = 10.0, *, pack: bool = True, v3: bool = False
) -> dict[str, Any]:
    """Encode and decode rates (samples/s, median of ``runs``) of a batch of the drive.

    ``v3``: with the catalogue of the batch's signals (built once, outside the timing, as
    the agent does).
    """
    samples, scales = synthetic_drive(seconds)
    encode_times: list[float] = []
    decode_times: list[float] = []
    encode_cpu: list[float] = []
    decode_cpu: list[float] = []
    catalogue = None
    if v3:
        first = build_batch(
            samples, vehicle_id="bench", stream="chassis", sequence=0, clock=ClockQuality.TRUSTED
        )
        catalogue = _catalogue(first, scales)
    lookup = {catalogue.hash: catalogue} if catalogue else None
    for _ in range(runs):
        started, cpu = time.perf_counter(), time.process_time()
        batch = build_batch(
            samples, vehicle_id="bench", stream="chassis", sequence=0, clock=ClockQuality.TRUSTED
        )
        data = encode_batch(batch, scales=scales, pack=pack, catalogue=catalogue)
        encode_times.append(time.perf_counter() - started)
        encode_cpu.append(time.process_time() - cpu)
        started, cpu = time.perf_counter(), time.process_time()
        decode_batch(data, catalogues=lookup)
        decode_times.append(time.perf_counter() - started)
        decode_cpu.append(time.process_time() - cpu)
    encode = sorted(encode_times)[runs // 2]
    decode = sorted(decode_times)[runs // 2]
    return {
        "encode_samples_per_s": round(len(samples) / encode),
        "decode_samples_per_s": round(len(samples) / decode),
        # Per second of this process's CPU time: what one core does, even on a loaded machine
        # (where the wall-clock rates above also count the time other processes ran).
        "encode_samples_per_cpu_s": round(len(samples) / max(sorted(encode_cpu)[runs // 2], 1e-9)),
        "decode_samples_per_cpu_s": round(len(samples) / max(sorted(decode_cpu)[runs // 2], 1e-9)),
        "batch_bytes": len(data),
        "format_version": data[4],
    }


def _hostile_batches(valid: bytes) -> dict[str, bytes]:
    """Batches built to hurt the decoder: bombs, lies about sizes, nesting, huge counts.

    The last two are ``valid`` with its columns replaced.
    """
    big = 64 * 1024 * 1024
    bomb = zstandard.ZstdCompressor(write_checksum=True).compress(bytes(big))
    # A zstd frame declaring 1000 bytes, then 800 RLE blocks of 128 KiB (100 MiB).
    rle = ((128 * 1024) << 3 | 1 << 1).to_bytes(3, "little") + b"A"
    last = (1 << 3 | 1 << 1 | 1).to_bytes(3, "little") + b"A"
    lying = bytes.fromhex("28b52ffd") + b"\xa4" + (1000).to_bytes(4, "little")
    lying += rle * 800 + last + bytes(4)
    half = (1 << 19) + 1  # two such columns are one sample over the limit
    column = {"name": "x", "type": "int", "enc": "delta", "t": [1] * half, "v": [1] * half}
    tiny = {"name": "x", "type": "int", "enc": "raw", "t": [], "v": []}
    envelope = msgpack.unpackb(unseal(valid))
    return {
        "zstd_bomb": HEADER.pack(MAGIC, 1, 1, big) + bomb,
        "frame_lies_about_its_size": HEADER.pack(MAGIC, 1, 1, 1000) + lying,
        "deep_nesting": seal(b"\x91" * 100_000 + b"\x00"),
        "declared_lengths_1_gb": seal(b"\xdd\x00\x10\x00\x00" * 120),
        "too_many_samples": seal(
            msgpack.packb({**envelope, "signals": [column, column]}), version=envelope["v"]
        ),
        "too_many_columns": seal(
            msgpack.packb({**envelope, "signals": [tiny] * (1 << 14 | 1)}), version=envelope["v"]
        ),
    }


def _decode_ms(data: bytes) -> float:
    started = time.perf_counter()
    with contextlib.suppress(BatchFormatError):
        decode_batch(data)
    return (time.perf_counter() - started) * 1000


def measure_hostile_decoding(runs: int, mutations: int = 2000, seed: int = 7) -> dict[str, Any]:
    """How long the decoder takes over hostile batches, in milliseconds.

    Each hostile batch's refusal (median of ``runs``), and the slowest and 99th-percentile
    decode of ``mutations`` seeded random corruptions of a real batch. The tests prove that
    such input is refused with a one-line error and bounded memory; how quickly is a
    property of the machine, so it is measured here, not asserted there.
    """
    samples, scales = synthetic_drive(1.0)
    batch = build_batch(
        samples, vehicle_id="bench", stream="chassis", sequence=0, clock=ClockQuality.TRUSTED
    )
    valid = encode_batch(batch, scales=scales)
    refusals = {
        name: round(sorted(_decode_ms(data) for _ in range(runs))[runs // 2], 3)
        for name, data in _hostile_batches(valid).items()
    }
    rng = random.Random(seed)
    times: list[float] = []
    for _ in range(mutations):
        data = bytearray(valid)
        for _ in range(rng.randint(1, 4)):  # replace, delete or insert a byte
            position, kind = rng.randrange(len(data)), rng.choice("rdi")
            if kind == "r":
                data[position] = rng.randrange(256)
            elif kind == "d":
                del data[position]
            else:
                data.insert(position, rng.randrange(256))
        times.append(_decode_ms(bytes(data)))
    times.sort()
    return {
        "refuse_ms": refusals,
        "mutated": {
            "batches": mutations,
            "batch_bytes": len(valid),
            "max_ms": round(times[-1], 3),
            "p99_ms": round(times[int(0.99 * (len(times) - 1))], 3),
        },
    }


def bench_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Entry for ``edge-agent bench batch``."""
    seconds = args.seconds or 10.0
    sizes = compare_encodings(seconds)
    return {
        "bytes_per_sample": sizes,
        "ratio_json_rows_to_v1": round(sizes["json_rows_zstd"] / sizes["v1_ms_dbc_scales"], 2),
        "ratio_json_rows_to_v2": round(sizes["json_rows_zstd"] / sizes["v2_ms_dbc_scales"], 2),
        # What the agent writes (v2 packs noisy columns), then the same batch left as v1.
        **measure_rates(args.runs or 5, seconds),
        "v1": measure_rates(args.runs or 5, seconds, pack=False),
        "v3": measure_rates(args.runs or 5, seconds, v3=True),
        "hostile": measure_hostile_decoding(args.runs or 5),
        "batch_seconds": seconds,
        "zstd_level": 3,
        "machine": machine(),
    }
