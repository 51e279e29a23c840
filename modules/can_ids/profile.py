"""The IDS profile: what one bus looks like when nobody attacks it, as a versioned JSON file.

The IDS module owns this format (docs/ids.md). A file carries its format name, its version and
a SHA-256 digest of its content; a file of another version, a hand-edited one (digest
mismatch) or a damaged one is refused with a one-line :class:`ProfileError`. Learning is in
:mod:`edge_agent.modules.can_ids.learn`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "edge-agent-ids-profile"
VERSION = 2
"""2: counters of any field and width, checksums (1 had 4-bit counters only)."""
EXTENDED_FLAG = 1 << 31
"""Added to an extended (29-bit) id so it never collides with a standard id of the same value."""


class ProfileError(Exception):
    """A profile cannot be used; the message says why and what to do, in one line."""


@dataclass(slots=True)
class IdProfile:
    """What one CAN id looked like in clean traffic.

    ``periodic`` ids have timing limits: ``period_s`` (median interval), the shortest and
    longest intervals seen, and ``mean_tolerance_s``, how far the mean of a window of
    intervals strayed from the period (a sender's clock: a new owner of the id has another).
    ``constant_mask`` marks the payload bits (little-endian integer of the data) that never
    moved, ``reference`` their value; ``counter`` is the rolling counter field ``[lowest bit,
    bits, modulus]`` and ``checksum`` the checksum byte ``[index, frame length, algorithm]``
    (:mod:`edge_agent.modules.can_ids.integrity`), if any.
    """

    count: int
    dlcs: list[int]
    reference: int
    constant_mask: int
    periodic: bool = False
    period_s: float = 0.0
    min_interval_s: float = 0.0
    max_interval_s: float = 0.0
    mean_tolerance_s: float = 0.0
    counter: list[int] | None = None
    checksum: list[int | str] | None = None
    ranges: list[list[int]] = field(default_factory=list)
    """From a DBC: ``[start bit, length, signed, lowest raw, highest raw]`` per signal."""


@dataclass(slots=True)
class BusProfile:
    """A bus's learned profile: every id seen, bus load and error-frame rate."""

    frames: int
    duration_s: float
    load_window_s: float
    max_frames_per_window: int
    max_error_frames_per_window: int
    ids: dict[int, IdProfile] = field(default_factory=dict)
    source: str = ""

    @property
    def periodic_ids(self) -> list[int]:
        """Ids with timing limits (empty on a bus without periodic traffic: degraded mode)."""
        return [key for key, item in self.ids.items() if item.periodic]


def id_text(key: int) -> str:
    """An id key as people write it: ``0x0B0`` (standard) or ``0x18FF0010x`` (extended)."""
    if key & EXTENDED_FLAG:
        return f"0x{key & ~EXTENDED_FLAG:08X}x"
    return f"0x{key:03X}"


def arbitration_rank(key: int) -> int:
    """Where an id key stands in CAN arbitration: lower wins (standard and extended ids mixed).

    The 11 base bits are compared first; on a tie the standard frame wins (its RTR bit is
    dominant where the extended frame's SRR is recessive), then the 18 extension bits.
    """
    if key & EXTENDED_FLAG:
        ident = key & ~EXTENDED_FLAG
        return ((ident >> 18) << 19) | (1 << 18) | (ident & 0x3FFFF)
    return key << 19


def _id_key(text: str) -> int:
    if text.endswith("x"):
        return int(text[:-1], 16) | EXTENDED_FLAG
    return int(text, 16)


def _content(profile: BusProfile) -> dict[str, Any]:
    ids = {}
    for key in sorted(profile.ids):
        item = asdict(profile.ids[key])
        item["reference"] = f"{item['reference']:x}"
        item["constant_mask"] = f"{item['constant_mask']:x}"
        ids[id_text(key)] = item
    return {
        "source": profile.source,
        "frames": profile.frames,
        "duration_s": profile.duration_s,
        "load_window_s": profile.load_window_s,
        "max_frames_per_window": profile.max_frames_per_window,
        "max_error_frames_per_window": profile.max_error_frames_per_window,
        "ids": ids,
    }


def _digest(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def dump_profile(profile: BusProfile) -> str:
    """The profile as JSON text (format, version, digest, content)."""
    content = _content(profile)
    document = {
        "format": FORMAT,
        "version": VERSION,
        "digest": _digest(content),
        "profile": content,
    }
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def save_profile(profile: BusProfile, path: str | Path) -> None:
    """Write the profile to ``path`` (whole file replaced)."""
    target = Path(path)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(dump_profile(profile), encoding="utf-8")
    temporary.replace(target)


def _number(value: Any, where: str, *, integer: bool = False) -> Any:
    wanted = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, wanted):
        raise ProfileError(f"{where} must be a number, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ProfileError(f"{where} must be a finite number >= 0, not {value!r}")
    return value


def _is_range(item: Any) -> bool:
    if not isinstance(item, list) or len(item) != 5:
        return False
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in item):
        return False
    start, length, signed, low, high = item
    return 0 <= start < 512 and 1 <= length <= 64 and signed in (0, 1) and low <= high


def _counter(raw: Any, where: str) -> list[int] | None:
    if raw is None:
        return None
    if (
        isinstance(raw, list)
        and len(raw) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) for v in raw)
    ):
        lsb, length, modulus = raw
        if 0 <= lsb < 512 and 1 <= length <= 16 and 2 <= modulus <= (1 << length):
            return list(raw)
    raise ProfileError(f"{where}.counter must be [lowest bit, bits 1..16, modulus]")


def _checksum(raw: Any, where: str) -> list[int | str] | None:
    from edge_agent.modules.can_ids.integrity import CHECKSUMS, CONSISTENT

    if raw is None:
        return None
    if isinstance(raw, list) and len(raw) == 3:
        at, length, algorithm = raw
        if (
            all(isinstance(v, int) and not isinstance(v, bool) for v in (at, length))
            and 0 <= at < length <= 64
            and (algorithm in CHECKSUMS or algorithm == CONSISTENT)
        ):
            return [at, length, algorithm]
    raise ProfileError(
        f"{where}.checksum must be [byte, frame length, one of {', '.join(CHECKSUMS)} or "
        f"{CONSISTENT}]"
    )


def _id_profile(text: str, raw: Any) -> IdProfile:
    where = f"ids.{text}"
    if not isinstance(raw, dict):
        raise ProfileError(f"{where} must be an object")
    try:
        dlcs = raw["dlcs"]
        if not isinstance(dlcs, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 64 for d in dlcs
        ):
            raise ProfileError(f"{where}.dlcs must be a list of lengths 0..64")
        counter = _counter(raw.get("counter"), where)
        checksum = _checksum(raw.get("checksum"), where)
        ranges = raw.get("ranges", [])
        if not isinstance(ranges, list) or not all(_is_range(item) for item in ranges):
            raise ProfileError(
                f"{where}.ranges must be a list of [start, length, signed, low, high]"
            )
        return IdProfile(
            count=_number(raw["count"], f"{where}.count", integer=True),
            dlcs=list(dlcs),
            reference=int(str(raw["reference"]), 16),
            constant_mask=int(str(raw["constant_mask"]), 16),
            periodic=bool(raw["periodic"]),
            period_s=float(_number(raw["period_s"], f"{where}.period_s")),
            min_interval_s=float(_number(raw["min_interval_s"], f"{where}.min_interval_s")),
            max_interval_s=float(_number(raw["max_interval_s"], f"{where}.max_interval_s")),
            mean_tolerance_s=float(_number(raw["mean_tolerance_s"], f"{where}.mean_tolerance_s")),
            counter=counter,
            checksum=checksum,
            ranges=[list(item) for item in ranges],
        )
    except KeyError as missing:
        raise ProfileError(f"{where} lacks {missing}") from None
    except ValueError:
        raise ProfileError(f"{where}: reference and constant_mask must be hex") from None


def parse_profile(text: str, source: str = "profile") -> BusProfile:
    """The profile in ``text``; ProfileError (one line, naming ``source``) if unusable."""
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise ProfileError(
            f"{source}: not JSON ({error}); retrain with 'edge-agent ids train'"
        ) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ProfileError(f"{source}: not an IDS profile (no format {FORMAT!r})")
    version = document.get("version")
    if version != VERSION:
        raise ProfileError(
            f"{source}: profile version {version!r}, this edge-agent reads version {VERSION}; "
            "retrain with 'edge-agent ids train'"
        )
    content = document.get("profile")
    if not isinstance(content, dict) or document.get("digest") != _digest(content):
        raise ProfileError(
            f"{source}: content does not match its digest (edited by hand or damaged); "
            "retrain with 'edge-agent ids train'"
        )
    try:
        return _bus_profile(content)
    except ProfileError as error:
        raise ProfileError(f"{source}: {error}") from None


def _bus_profile(content: dict[str, Any]) -> BusProfile:
    ids_raw = content.get("ids")
    if not isinstance(ids_raw, dict):
        raise ProfileError("ids must be an object")
    ids: dict[int, IdProfile] = {}
    for text, raw in ids_raw.items():
        try:
            key = _id_key(str(text))
        except ValueError:
            raise ProfileError(f"ids: {text!r} is not a CAN id like 0x1A0") from None
        ids[key] = _id_profile(str(text), raw)
    try:
        window = float(_number(content["load_window_s"], "load_window_s"))
        if window <= 0:
            raise ProfileError("load_window_s must be > 0")
        return BusProfile(
            frames=_number(content["frames"], "frames", integer=True),
            duration_s=float(_number(content["duration_s"], "duration_s")),
            load_window_s=window,
            max_frames_per_window=_number(
                content["max_frames_per_window"], "max_frames_per_window", integer=True
            ),
            max_error_frames_per_window=_number(
                content["max_error_frames_per_window"], "max_error_frames_per_window", integer=True
            ),
            ids=ids,
            source=str(content.get("source", "")),
        )
    except KeyError as missing:
        raise ProfileError(f"lacks {missing}") from None


def load_profile(path: str | Path) -> BusProfile:
    """The profile stored at ``path``; ProfileError (one line) if missing or unusable."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ProfileError(f"{path}: cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ProfileError(
            f"{path}: not a text file; retrain with 'edge-agent ids train'"
        ) from None
    return parse_profile(text, str(path))
