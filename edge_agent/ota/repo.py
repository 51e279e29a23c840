"""A TUF repository for agent bundles, built on python-tuf's metadata API.

Layout of a repository directory (serve ``metadata/`` and ``targets/`` over HTTP)::

    keys/ROLE-N.pem        private keys (a development tool: production keys for root and
                           targets belong offline or in an HSM; snapshot/timestamp online)
    repo.json              expiry periods used when re-signing
    metadata/N.root.json   every root version; root.json is the newest (the trust anchor)
    metadata/N.targets.json, N.snapshot.json, timestamp.json   (consistent snapshots)
    targets/HASH.NAME      target files, prefixed with their sha256

``add`` signs a new targets version (invisible to clients); ``publish`` signs a new snapshot
and timestamp that make it visible, with lengths and hashes so mix-and-match is detected.
``add_config`` signs a config target the same way: privileged settings for a fleet
(docs/security.md), delivered by an OTA job of kind ``config``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from edge_agent.durable import write_bytes_atomic
from edge_agent.ota.bundle import read_manifest
from edge_agent.ota.errors import OtaError
from edge_agent.ota.versions import parse_version
from edge_agent.untrusted import UntrustedDataError, load_json_bounded, load_toml_bounded

ROLES = ("root", "targets", "snapshot", "timestamp")
DEFAULT_EXPIRY_DAYS = {"root": 365.0, "targets": 90.0, "snapshot": 7.0, "timestamp": 1.0}
HASH_ALGORITHMS = ["sha256"]
CUSTOM_KEY = "edge_agent"
T = TypeVar("T", Root, Timestamp, Snapshot, Targets)


class RepositoryError(Exception):
    """The repository directory is missing, damaged, or the request does not fit it."""


def target_path(name: str, version: str) -> str:
    """The TUF target path of bundle ``name`` at ``version`` (what a job resolves to)."""
    return f"{name}-{version}.bundle"


def config_target_path(name: str, version: str) -> str:
    """The TUF target path of config ``name`` at ``version`` (what a config job resolves to)."""
    return f"{name}-{version}.config.json"


def config_document(source: Path, version: str) -> bytes:
    """The signed config document for ``source`` (TOML or JSON with ``[modules.NAME]`` tables).

    Only ``modules`` may be in it (``[agent]`` and ``[spool]`` stay local on each vehicle);
    the result is canonical JSON ``{"version", "modules"}``.
    """
    from edge_agent.config.errors import ConfigError
    from edge_agent.config.signed import parse_signed

    try:
        raw = source.read_bytes()
        load = load_json_bounded if source.suffix == ".json" else load_toml_bounded
        data: Any = load(raw, max_bytes=1024 * 1024, what="config")
    except (OSError, UntrustedDataError) as error:
        raise RepositoryError(f"{source}: not a readable TOML or JSON config: {error}") from None
    if not isinstance(data, dict):
        raise RepositoryError(f"{source}: must hold [modules.NAME] tables")
    stated = data.pop("version", version)
    if stated != version:
        raise RepositoryError(f"{source}: version {stated!r} is not --version {version}")
    try:
        document = parse_signed({"version": version, **data})
    except ConfigError as error:
        raise RepositoryError(f"{source}: {error}") from None
    return json.dumps(document, sort_keys=True, indent=1).encode()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Repository:
    """A repository directory: load, sign and write its metadata."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.metadata_dir = self.dir / "metadata"
        self.targets_dir = self.dir / "targets"
        self.keys_dir = self.dir / "keys"
        self._serializer = JSONSerializer(compact=False)

    # -- keys and settings -------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """``repo.json``: expiry days per role."""
        try:
            data = json.loads((self.dir / "repo.json").read_text())
        except FileNotFoundError:
            raise RepositoryError(f"{self.dir} is not a repository (no repo.json)") from None
        return data if isinstance(data, dict) else {}

    def signers(self, role: str) -> list[Signer]:
        """The private keys of ``role`` found in ``keys/``."""
        found: list[Signer] = []
        for path in sorted(self.keys_dir.glob(f"{role}-*.pem")):
            private = load_pem_private_key(path.read_bytes(), None)
            found.append(CryptoSigner(private))
        if not found:
            raise RepositoryError(f"no private key for role {role!r} in {self.keys_dir}")
        return found

    def expires(self, role: str, days: float | None = None) -> datetime:
        """The expiry of a new ``role`` version (``days`` overrides ``repo.json``)."""
        if days is None:
            days = float(
                self.settings().get("expiry_days", {}).get(role, DEFAULT_EXPIRY_DAYS[role])
            )
        return _now() + timedelta(days=days)

    # -- reading and writing -----------------------------------------------------------------

    def load(self, role: str, kind: type[T]) -> Metadata[T]:
        """The newest ``role`` metadata."""
        path = self.metadata_dir / f"{role}.json"
        if not path.is_file():
            raise RepositoryError(f"{self.dir} has no {role} metadata; run 'repo init'")
        metadata: Metadata[Any] = Metadata.from_file(str(path))
        if not isinstance(metadata.signed, kind):
            raise RepositoryError(f"{path} is not {role} metadata")
        return cast(Metadata[T], metadata)

    def sign(self, metadata: Metadata[Any], signers: list[Signer]) -> None:
        """Replace the signatures of ``metadata`` with those of ``signers``."""
        metadata.signatures.clear()
        for signer in signers:
            metadata.sign(signer, append=True)

    def write(self, metadata: Metadata[Any]) -> bytes:
        """Write ``metadata`` (versioned name, plus ``timestamp.json``/``ROLE.json``)."""
        role = metadata.signed.type
        data = metadata.to_bytes(self._serializer)
        if role != "timestamp":
            write_bytes_atomic(self.metadata_dir / f"{metadata.signed.version}.{role}.json", data)
        write_bytes_atomic(self.metadata_dir / f"{role}.json", data)
        return data

    # -- operations --------------------------------------------------------------------------

    def init(
        self,
        *,
        expiry_days: dict[str, float] | None = None,
        thresholds: dict[str, int] | None = None,
    ) -> None:
        """Create keys (``threshold`` ed25519 keys per role) and version 1 of every role."""
        if (self.dir / "repo.json").exists():
            raise RepositoryError(f"{self.dir} is already a repository")
        days = {**DEFAULT_EXPIRY_DAYS, **(expiry_days or {})}
        counts = {role: (thresholds or {}).get(role, 1) for role in ROLES}
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        self.keys_dir.chmod(0o700)
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(self.dir / "repo.json", json.dumps({"expiry_days": days}).encode())
        root = Root(expires=_now() + timedelta(days=days["root"]), consistent_snapshot=True)
        for role in ROLES:
            for number in range(1, counts[role] + 1):
                signer = CryptoSigner.generate_ed25519()
                key_file = self.keys_dir / f"{role}-{number}.pem"
                write_bytes_atomic(key_file, signer.private_bytes)
                key_file.chmod(0o600)
                root.add_key(signer.public_key, role)
            root.roles[role].threshold = counts[role]
        root_md = Metadata(root)
        self.sign(root_md, self.signers("root"))
        self.write(root_md)
        targets_md = Metadata(Targets(expires=self.expires("targets", days["targets"])))
        self.sign(targets_md, self.signers("targets"))
        self.write(targets_md)
        self.publish()

    def add(
        self,
        bundle: Path,
        version: str,
        *,
        name: str | None = None,
        hardware_ids: list[str] | None = None,
        kind: str = "ab",
    ) -> TargetFile:
        """Add ``bundle`` as a target and sign a new targets version (``publish`` to release).

        For ``kind="ab"`` (agent bundles) name and hardware ids come from the manifest, whose
        version must equal ``version``; other kinds (``rauc``) need ``name`` and ``hardware_ids``.
        """
        parse_version(version)
        if kind == "ab":
            try:
                manifest = read_manifest(bundle)
            except OtaError as error:
                raise RepositoryError(f"{bundle}: {error}") from None
            if manifest.version != version:
                raise RepositoryError(
                    f"{bundle}: manifest version {manifest.version} is not --version {version}"
                )
            name = name or manifest.name
            hardware_ids = hardware_ids or manifest.hardware_ids
        if not name or not hardware_ids:
            raise RepositoryError(f"a {kind} bundle needs a target name and hardware ids")
        return self._sign_target(
            target_path(name, version),
            bundle,
            name=name,
            version=version,
            hardware_ids=hardware_ids,
            kind=kind,
        )

    def add_config(
        self, source: Path, version: str, *, name: str, hardware_ids: list[str]
    ) -> TargetFile:
        """Add the config in ``source`` as a signed target (``publish`` to release it)."""
        parse_version(version)
        if not hardware_ids:
            raise RepositoryError("a config target needs at least one hardware id")
        document = config_document(source, version)
        with tempfile.TemporaryDirectory(prefix="edge-agent-config-") as scratch:
            staged = Path(scratch) / "config.json"
            staged.write_bytes(document)
            path = config_target_path(name, version)
            return self._sign_target(
                path, staged, name=name, version=version, hardware_ids=hardware_ids, kind="config"
            )

    def _sign_target(
        self,
        path: str,
        source: Path,
        *,
        name: str,
        version: str,
        hardware_ids: list[str],
        kind: str,
    ) -> TargetFile:
        info = TargetFile.from_file(path, str(source), HASH_ALGORITHMS)
        info.unrecognized_fields["custom"] = {
            CUSTOM_KEY: {
                "name": name,
                "version": version,
                "hardware_ids": list(hardware_ids),
                "kind": kind,
            }
        }
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, self.targets_dir / f"{info.hashes['sha256']}.{path}")
        targets = self.load("targets", Targets)
        targets.signed.targets[path] = info
        targets.signed.version += 1
        targets.signed.expires = self.expires("targets")
        self.sign(targets, self.signers("targets"))
        self.write(targets)
        return info

    def rotate(self, role: str) -> int:
        """Replace every key of ``role`` with new ones; return the new root version.

        A new root version lists the new keys (same threshold) and is signed by the current
        root keys, and for a root rotation by the new ones too, so vehicles can follow the
        chain of roots from the one they trust. The retired private keys move to
        ``keys/retired/``. Metadata of the role is re-signed and published at once.
        """
        if role not in ROLES:
            raise RepositoryError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
        root = self.load("root", Root)
        current_root_signers = self.signers("root")
        threshold = root.signed.roles[role].threshold
        for keyid in list(root.signed.roles[role].keyids):
            root.signed.revoke_key(keyid, role)
        retired = self.keys_dir / "retired" / f"root-v{root.signed.version}"
        retired.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.keys_dir.glob(f"{role}-*.pem")):
            path.rename(retired / path.name)
        for number in range(1, threshold + 1):
            signer = CryptoSigner.generate_ed25519()
            key_file = self.keys_dir / f"{role}-{number}.pem"
            write_bytes_atomic(key_file, signer.private_bytes)
            key_file.chmod(0o600)
            root.signed.add_key(signer.public_key, role)
        root.signed.version += 1
        root.signed.expires = self.expires("root")
        signers = current_root_signers + (self.signers("root") if role == "root" else [])
        self.sign(root, signers)
        self.write(root)
        if role == "targets":
            targets = self.load("targets", Targets)
            targets.signed.version += 1
            targets.signed.expires = self.expires("targets")
            self.sign(targets, self.signers("targets"))
            self.write(targets)
        self.publish()
        return root.signed.version

    def publish(
        self,
        *,
        snapshot_expires: datetime | None = None,
        timestamp_expires: datetime | None = None,
    ) -> int:
        """Sign a new snapshot (naming the newest targets) and timestamp; return its version."""
        targets_bytes = (self.metadata_dir / "targets.json").read_bytes()
        targets = self.load("targets", Targets)
        try:
            snapshot = self.load("snapshot", Snapshot)
            snapshot.signed.version += 1
        except RepositoryError:
            snapshot = Metadata(Snapshot())
        snapshot.signed.meta["targets.json"] = MetaFile.from_data(
            targets.signed.version, targets_bytes, HASH_ALGORITHMS
        )
        snapshot.signed.expires = snapshot_expires or self.expires("snapshot")
        self.sign(snapshot, self.signers("snapshot"))
        snapshot_bytes = self.write(snapshot)
        try:
            timestamp = self.load("timestamp", Timestamp)
            timestamp.signed.version += 1
        except RepositoryError:
            timestamp = Metadata(Timestamp())
        timestamp.signed.snapshot_meta = MetaFile.from_data(
            snapshot.signed.version, snapshot_bytes, HASH_ALGORITHMS
        )
        timestamp.signed.expires = timestamp_expires or self.expires("timestamp")
        self.sign(timestamp, self.signers("timestamp"))
        self.write(timestamp)
        return snapshot.signed.version

    def root_file(self) -> Path:
        """The newest root metadata: copy it to a vehicle as its trust anchor."""
        return self.metadata_dir / "root.json"
