"""Structural seeds: the shapes byte mutations never reach (deep nesting, huge sizes, 29-bit ids).

Flipping, inserting and cutting bytes of a small valid input almost never yields ten thousand
nested brackets, a length field of four gigabytes or an extended CAN id, yet those are what a
hostile broker message, bundle or log file carries first. Each target gets such seeds in the
shape of its own input (JSON, TOML, DBC text, candump lines, BLF, tar, the batch format);
``scripts/fuzz`` runs each as it is and then mutates it like the other seeds.
"""

from __future__ import annotations

import io
import json
import struct
import tarfile

DEPTHS = (10_000, 100_000, 1_000_000)
HUGE = 16 * 1024 * 1024  # bytes: a value far larger than any real message
EXTENDED_IDS = (0x1FFFFFFF, 0x18FEF100, 0x0CF00400, 0x800)  # 29-bit: max, J1939-style, just 12 bits


def json_arrays(depth: int) -> bytes:
    """``[[[...]]]`` nested ``depth`` deep."""
    return b"[" * depth + b"]" * depth


def json_objects(depth: int, key: str = "a") -> bytes:
    """``{"a": {"a": ... 1}}`` nested ``depth`` deep."""
    return f'{{"{key}":'.encode() * depth + b"1" + b"}" * depth


def json_inside(envelope: dict[str, object], field: str, depth: int) -> bytes:
    """A valid ``envelope`` whose ``field`` holds ``depth`` nested arrays."""
    text = json.dumps({**envelope, field: "@@"}).encode()
    return text.replace(b'"@@"', json_arrays(depth))


def json_structures(envelope: dict[str, object], field: str) -> list[bytes]:
    """Nesting at every depth (bare and inside a valid envelope), huge strings and numbers."""
    seeds: list[bytes] = []
    for depth in DEPTHS:
        seeds += [json_arrays(depth), json_objects(depth), json_inside(envelope, field, depth)]
    huge_text = json.dumps({**envelope, field: "x" * HUGE}).encode()
    huge_number = json.dumps({**envelope, field: "@@"}).encode().replace(b'"@@"', b"9" * 100_000)
    wide = json.dumps({**envelope, field: list(range(1_000_000))}).encode()
    many_keys = json.dumps({**envelope, **{f"k{i}": i for i in range(200_000)}}).encode()
    return [*seeds, huge_text, huge_number, wide, many_keys]


def toml_structures(prefix: bytes) -> list[bytes]:
    """TOML after ``prefix``: nested arrays and inline tables, a huge string, many tables."""
    seeds: list[bytes] = []
    for depth in DEPTHS:
        seeds.append(prefix + b"x = " + b"[" * depth + b"]" * depth + b"\n")
        seeds.append(prefix + b"x = " + b"{a = " * depth + b"1" + b"}" * depth + b"\n")
        seeds.append(prefix + b"[" + b".".join([b"a"] * depth) + b"]\n")
    seeds.append(prefix + b'x = "' + b"x" * HUGE + b'"\n')
    seeds.append(prefix + b"x = " + b"9" * 100_000 + b"\n")
    seeds.append(prefix + b"".join(b"[t%d]\nv = 1\n" % i for i in range(100_000)))
    return seeds


def dbc_structures() -> list[bytes]:
    """DBC text with extended ids, huge lengths and counts, and a very long line."""
    header = b'VERSION ""\n\nBU_: ECU\n\n'
    seeds = []
    for can_id in EXTENDED_IDS:
        seeds.append(
            header
            + b'BO_ %d Ext: 8 ECU\n SG_ S : 0|8@1+ (1,0) [0|255] "" ECU\n\n' % (0x80000000 | can_id)
        )
    seeds.append(header + b"BO_ 2684354559 Huge: 4294967295 ECU\n")  # id 0x1FFFFFFF, DLC 2^32-1
    seeds.append(header + b'BO_ 100 M: 8 ECU\n SG_ S : 0|2147483647@1+ (1,0) [0|1] "" ECU\n')
    seeds.append(header + b"".join(b"BO_ %d M%d: 8 ECU\n" % (i, i) for i in range(20_000)))
    seeds.append(header + b'CM_ "' + b"x" * HUGE + b'";\n')
    return seeds


def candump_structures() -> list[bytes]:
    """candump lines with extended ids (data, remote, FD), huge payloads and ids."""
    seeds = [b"(1.0) vcan0 %08X#DEADBEEF" % can_id for can_id in EXTENDED_IDS]
    seeds += [b"(1.0) vcan0 %08X#R" % EXTENDED_IDS[0], b"(1.0) vcan0 %08X##1" % EXTENDED_IDS[1]]
    seeds.append(b"(1.0) vcan0 1FFFFFFF##0" + b"AB" * 64)  # the largest FD frame
    seeds.append(b"(1.0) vcan0 1FFFFFFF#" + b"AB" * 1_000_000)  # far past any frame
    seeds.append(b"(1.0) vcan0 " + b"F" * 100_000 + b"#00")  # an id with 100,000 digits
    seeds.append(b"(" + b"9" * 100_000 + b".0) vcan0 123#00")
    seeds.append(b"(1.0) " + b"v" * HUGE + b" 123#00")
    return seeds


def can_frame_structures() -> list[bytes]:
    """Inputs of the ``can-frame`` target with extended ids (flag bit 2), FD and oversize."""
    seeds = []
    for can_id in EXTENDED_IDS:
        seeds.append(bytes([0, 0, 4]) + can_id.to_bytes(4, "big") + bytes(8))
        seeds.append(bytes([0, 0, 4 | 2]) + can_id.to_bytes(4, "big"))  # remote
        seeds.append(bytes([0, 0, 4]) + can_id.to_bytes(4, "big") + bytes(64))  # FD
    seeds.append(bytes([0, 0, 4]) + (0xFFFFFFFF).to_bytes(4, "big") + bytes(8))  # > 29 bits
    seeds.append(bytes([0, 0, 0]) + bytes(HUGE))
    return seeds


def tar_structures(manifest: bytes) -> list[bytes]:
    """Bundles with deep paths, a huge declared size, a deep manifest, many members."""

    def archive(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for info, body in members:
                tar.addfile(info, io.BytesIO(body))
        return out.getvalue()

    def member(name: str, body: bytes) -> tuple[tarfile.TarInfo, bytes]:
        info = tarfile.TarInfo(name)
        info.size = len(body)
        return info, body

    deep_path = "payload/" + "/".join(["d"] * 10_000) + "/f"
    seeds = [
        archive([member("manifest.json", manifest), member(deep_path, b"x")]),
        archive([member("manifest.json", json_inside({"version": "1"}, "hardware_ids", 10_000))]),
        archive(
            [member("manifest.json", manifest)]
            + [member(f"payload/f{i}", b"") for i in range(20_000)]
        ),
    ]
    huge = bytearray(archive([member("manifest.json", manifest), member("payload/big", b"x")]))
    # Lie in the second member's size field: 8 GiB (octal, the ustar header at 512 + 124).
    second = huge.find(b"payload/big") // 512 * 512
    huge[second + 124 : second + 136] = b"%011o\0" % (8 << 30)
    huge[second + 148 : second + 156] = b" " * 8
    checksum = sum(huge[second : second + 512])
    huge[second + 148 : second + 156] = b"%06o\0 " % checksum
    seeds.append(bytes(huge))
    return seeds


def blf_structures(valid: bytes) -> list[bytes]:
    """BLF files claiming huge sizes and counts in the file header (real ids: 29-bit inside)."""
    seeds = []
    for field_offset, value in ((8, 0xFFFFFFFF), (16, 1 << 62), (24, 1 << 62), (32, 0xFFFFFFFF)):
        data = bytearray(valid)
        size = 4 if value <= 0xFFFFFFFF else 8
        data[field_offset : field_offset + size] = value.to_bytes(size, "little")
        seeds.append(bytes(data))
    seeds.append(valid + b"LOBJ" + struct.pack("<HHII", 16, 1, 0xFFFFFFF0, 10) + bytes(16))
    return seeds


def msgpack_structures() -> list[bytes]:
    """msgpack bodies (to be sealed into a batch frame) nested deep or claiming huge sizes."""
    seeds = [b"\x91" * depth + b"\xc0" for depth in DEPTHS]  # fixarray of one, nested
    seeds += [b"\x81\xa1a" * depth + b"\xc0" for depth in DEPTHS[:2]]  # fixmap {"a": ...}
    seeds.append(b"\xdd\xff\xff\xff\xff")  # array32 claiming 4 G elements
    seeds.append(b"\xdb\xff\xff\xff\xff" + b"x" * 64)  # str32 claiming 4 GiB
    seeds.append(b"\xc6\x7f\xff\xff\xff" + b"x" * 64)  # bin32 claiming 2 GiB
    return seeds
