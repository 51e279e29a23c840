"""Agent bundles: a tar archive with ``manifest.json`` and a ``payload/`` tree.

The payload becomes the slot: it holds ``bin/edge-agent`` (the launcher the systemd unit runs
through ``ota/current``) and, for ``install = "wheelhouse"`` bundles, ``wheelhouse/`` with the
agent and its dependencies as wheels, installed into ``venv/`` of the slot without network.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge_agent.ota.errors import Code, OtaError
from edge_agent.ota.extract import MANIFEST_MAX_BYTES, MANIFEST_NAME, PAYLOAD, read_member
from edge_agent.ota.slot_files import SlotFile, list_payload
from edge_agent.ota.versions import VERSION_PATTERN
from edge_agent.untrusted import UntrustedDataError, load_json_bounded

# A manifest is a flat object with a list of file entries: depth 3; room to grow.
MANIFEST_MAX_DEPTH = 8

BUNDLE_FORMAT = 1
DEFAULT_HARDWARE_IDS = ("generic-linux",)


class BundleManifest(BaseModel):
    """``manifest.json`` of a bundle: what it is and which hardware it fits."""

    model_config = ConfigDict(extra="allow")

    format: int = Field(default=BUNDLE_FORMAT, ge=1, le=BUNDLE_FORMAT)
    name: str = Field(default="edge-agent", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    version: str = Field(pattern=VERSION_PATTERN)
    hardware_ids: list[str] = Field(min_length=1)
    install: Literal["files", "wheelhouse"] = "files"
    created: float = Field(default_factory=time.time)
    # Every payload file (path, size, sha256), signed with the bundle; checked in the slot
    # after install and by the launch guard before a trial start. Empty in older bundles.
    files: list[SlotFile] = Field(default_factory=list)


def read_manifest(archive: Path) -> BundleManifest:
    """The validated manifest of the bundle at ``archive`` (raises OtaError BAD_BUNDLE)."""
    raw = read_member(archive, MANIFEST_NAME)
    if raw is None:
        raise OtaError(Code.BAD_BUNDLE, f"bundle has no {MANIFEST_NAME}")
    try:
        document = load_json_bounded(
            raw, max_bytes=MANIFEST_MAX_BYTES, max_depth=MANIFEST_MAX_DEPTH, what=MANIFEST_NAME
        )
    except UntrustedDataError as error:
        raise OtaError(Code.BAD_BUNDLE, f"{MANIFEST_NAME}: {error}") from None
    try:
        return BundleManifest.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "manifest"
        raise OtaError(Code.BAD_BUNDLE, f"{MANIFEST_NAME}: {where}: {first['msg']}") from None


def launcher_script(python: str, environment: dict[str, str] | None = None) -> str:
    """A slot's ``bin/edge-agent``: exports the slot path and runs the agent with ``python``.

    ``python`` may use ``$SLOT`` (the resolved slot directory), e.g. ``$SLOT/venv/bin/python``.
    """
    exports = "".join(f"export {key}='{value}'\n" for key, value in (environment or {}).items())
    return (
        "#!/bin/sh\n"
        "# edge-agent slot launcher; systemd runs STATE_DIR/ota/current/bin/edge-agent.\n"
        'SLOT="$(cd "$(dirname "$0")/.." && pwd -P)"\n'
        'export EDGE_AGENT_OTA_SLOT="$SLOT"\n'
        f"{exports}"
        f'exec "{python}" -P -m edge_agent "$@"\n'
    )


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def pack_bundle(payload_dir: Path, manifest: BundleManifest, out: Path) -> Path:
    """Write ``payload_dir`` and ``manifest`` (plus the payload's file list) as a gzip tar."""
    try:
        files = list_payload(payload_dir)
    except ValueError as error:
        raise OtaError(Code.BAD_BUNDLE, str(error)) from None
    signed = manifest.model_copy(update={"files": files})
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        _add_bytes(tar, MANIFEST_NAME, signed.model_dump_json(indent=2).encode(), 0o644)
        for entry in files:
            path = payload_dir / entry.path
            data = path.read_bytes()
            if len(data) != entry.size or hashlib.sha256(data).hexdigest() != entry.sha256:
                raise OtaError(Code.BAD_BUNDLE, f"payload file {entry.path} changed while packing")
            mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            _add_bytes(tar, f"{PAYLOAD}/{entry.path}", data, mode)
    return out


def build_wheelhouse_bundle(
    project_dir: Path,
    version: str,
    out: Path,
    hardware_ids: list[str] | None = None,
    pip_args: list[str] | None = None,
) -> BundleManifest:
    """Build the agent and its modules as a wheelhouse bundle (``pip wheel PROJECT``).

    The bundle installs offline into a venv inside the slot; its launcher runs that venv.
    """
    manifest = BundleManifest(
        version=version,
        hardware_ids=list(hardware_ids or DEFAULT_HARDWARE_IDS),
        install="wheelhouse",
    )
    with tempfile.TemporaryDirectory(prefix="edge-agent-bundle-") as scratch:
        payload = Path(scratch) / "payload"
        wheelhouse = payload / "wheelhouse"
        wheelhouse.mkdir(parents=True)
        command = [sys.executable, "-m", "pip", "wheel", "-q", str(project_dir), "-w"]
        result = subprocess.run(
            [*command, str(wheelhouse), *(pip_args or [])],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise OtaError(Code.BAD_BUNDLE, f"pip wheel failed: {' | '.join(tail)}")
        if not any(wheelhouse.glob("edge_agent-*.whl")):
            raise OtaError(Code.BAD_BUNDLE, f"pip wheel built no edge_agent wheel in {project_dir}")
        launcher = payload / "bin" / "edge-agent"
        launcher.parent.mkdir()
        launcher.write_text(launcher_script("$SLOT/venv/bin/python"))
        launcher.chmod(0o755)
        pack_bundle(payload, manifest, out)
    return manifest


def install_wheelhouse(slot_dir: Path, timeout_s: float = 900.0) -> None:
    """Create ``slot_dir/venv`` and install the slot's wheelhouse into it, offline."""
    venv = slot_dir / "venv"
    steps: list[list[str]] = [
        [sys.executable, "-m", "venv", str(venv)],
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--find-links",
            str(slot_dir / "wheelhouse"),
            "edge-agent",
        ],
    ]
    for step in steps:
        try:
            result = subprocess.run(
                step, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise OtaError(Code.INSTALL_FAILED, f"{step[2]} timed out") from None
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-2:]
            raise OtaError(Code.INSTALL_FAILED, f"{' '.join(step[:4])}: {' | '.join(tail)}")
