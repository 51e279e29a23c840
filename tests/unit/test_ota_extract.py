"""Safe bundle extraction: hostile members are refused before anything is written."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.ota.bundle import read_manifest
from edge_agent.ota.errors import Code, OtaError
from edge_agent.ota.extract import extract_payload, scan
from fixtures.ota_world import make_bundle, make_hostile_bundle


def test_payload_lands_in_the_slot_with_the_manifest(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "ok.bundle", "2.0.0", padding=10)
    slot = tmp_path / "slot"
    slot.mkdir()
    assert extract_payload(bundle, slot, 10_000_000) == 4
    assert (slot / "bin" / "edge-agent").stat().st_mode & 0o111
    assert (slot / "VERSION").read_text() == "2.0.0"
    assert read_manifest(bundle).version == "2.0.0"


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("dotdot", "'..'"),
        ("absolute", "absolute path"),
        ("symlink", "link to"),
        ("device", "device node"),
    ],
)
def test_hostile_member_refuses_the_whole_archive(tmp_path: Path, kind: str, reason: str) -> None:
    bundle = make_hostile_bundle(tmp_path / "bad.bundle", "2.0.0", kind)
    slot = tmp_path / "deep" / "slot"
    slot.mkdir(parents=True)
    with pytest.raises(OtaError) as caught:
        extract_payload(bundle, slot, 10_000_000)
    assert caught.value.code is Code.UNSAFE_ARCHIVE
    assert reason in str(caught.value)
    assert list(slot.iterdir()) == []  # refused before the first byte was written
    assert not list(tmp_path.rglob("escaped*"))


def test_archive_bigger_than_the_cap_is_refused(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "big.bundle", "2.0.0", padding=50_000)
    with pytest.raises(OtaError, match="unpacks to more than 10000 bytes"):
        scan(bundle, 10_000)


def test_setuid_bits_are_dropped(tmp_path: Path) -> None:
    bundle = tmp_path / "suid.bundle"
    with tarfile.open(bundle, "w:gz") as tar:
        info = tarfile.TarInfo("payload/bin/tool")
        info.size, info.mode = 2, 0o4755
        tar.addfile(info, io.BytesIO(b"#!"))
    slot = tmp_path / "slot"
    slot.mkdir()
    extract_payload(bundle, slot, 1000)
    assert (slot / "bin" / "tool").stat().st_mode & 0o7777 == 0o755


def test_garbage_is_a_bad_bundle_not_a_crash(tmp_path: Path) -> None:
    bundle = tmp_path / "garbage.bundle"
    bundle.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(OtaError) as caught:
        scan(bundle, 1000)
    assert caught.value.code is Code.BAD_BUNDLE


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.text(alphabet="ab./-", min_size=1, max_size=12),
        min_size=1,
        max_size=4,
    )
)
def test_no_member_name_escapes_the_slot(names: list[str]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        bundle = root / "fuzz.bundle"
        with tarfile.open(bundle, "w") as tar:
            for name in names:
                info = tarfile.TarInfo("payload/" + name)
                info.size = 1
                tar.addfile(info, io.BytesIO(b"x"))
        slot = root / "a" / "b" / "slot"
        slot.mkdir(parents=True)
        try:
            extract_payload(bundle, slot, 1000)
        except OtaError:
            pass
        except (IsADirectoryError, NotADirectoryError, FileExistsError):
            pass
        outside = [p for p in root.rglob("*") if p.is_file() and slot not in p.parents]
        assert outside == [bundle]
