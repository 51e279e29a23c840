"""``edge-agent ota ...``: repository tooling, bundles, provisioning and status."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from edge_agent.cli.exit_codes import Exit, UserError

# The handlers import python-tuf and friends lazily: ``edge-agent run`` should not pay for them.
ROLES = ("root", "targets", "snapshot", "timestamp")

SubParsers = "argparse._SubParsersAction[argparse.ArgumentParser]"
STATUS_LOG_RECORDS = 20


def _role_numbers(pairs: list[str] | None, option: str, kind: type) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for pair in pairs or []:
        role, _, value = pair.partition("=")
        if role not in ROLES or not value:
            raise UserError(f"{option} {pair!r}: expected ROLE=VALUE with ROLE one of {ROLES}")
        try:
            parsed[role] = kind(value)
        except ValueError:
            raise UserError(f"{option} {pair!r}: {value!r} is not a number") from None
    return parsed


def repo_init(args: argparse.Namespace) -> int:
    """``ota repo init DIR``: keys and version 1 of every role."""
    from edge_agent.ota.repo import Repository, RepositoryError

    repository = Repository(Path(args.dir))
    try:
        repository.init(
            expiry_days=_role_numbers(args.expiry_days, "--expiry-days", float),
            thresholds=_role_numbers(args.threshold, "--threshold", int),
        )
    except RepositoryError as error:
        raise UserError(str(error)) from None
    print(f"{args.dir}: repository created; trust anchor {repository.root_file()}")
    print("  private keys are in keys/: keep root and targets keys offline in production")
    return Exit.OK


def repo_add(args: argparse.Namespace) -> int:
    """``ota repo add DIR BUNDLE --version V``: sign a new targets version with the bundle."""
    from edge_agent.ota.repo import Repository, RepositoryError

    try:
        info = Repository(Path(args.dir)).add(
            Path(args.bundle),
            args.version,
            name=args.target,
            hardware_ids=args.hardware_id,
            kind=args.kind,
        )
    except (RepositoryError, ValueError, FileNotFoundError) as error:
        raise UserError(str(error)) from None
    print(f"added {info.path} ({info.length} bytes); run 'edge-agent ota repo publish {args.dir}'")
    return Exit.OK


def repo_add_config(args: argparse.Namespace) -> int:
    """``ota repo add-config DIR FILE --version V``: sign a config target (privileged settings)."""
    from edge_agent.ota.repo import Repository, RepositoryError

    try:
        info = Repository(Path(args.dir)).add_config(
            Path(args.file), args.version, name=args.target, hardware_ids=args.hardware_id
        )
    except (RepositoryError, ValueError, FileNotFoundError) as error:
        raise UserError(str(error)) from None
    print(
        f"added {info.path} ({info.length} bytes); run 'edge-agent ota repo publish {args.dir}', "
        f'then send a job {{"kind": "config", "target": "{args.target}", '
        f'"version": "{args.version}"}}'
    )
    return Exit.OK


def repo_rotate(args: argparse.Namespace) -> int:
    """``ota repo rotate DIR ROLE``: new keys for a role, announced in a new signed root."""
    from edge_agent.ota.repo import Repository, RepositoryError

    try:
        version = Repository(Path(args.dir)).rotate(args.role)
    except RepositoryError as error:
        raise UserError(str(error)) from None
    print(f"{args.role} keys rotated; root version {version} published (old keys in keys/retired/)")
    return Exit.OK


def repo_publish(args: argparse.Namespace) -> int:
    """``ota repo publish DIR``: new snapshot and timestamp."""
    from edge_agent.ota.repo import Repository, RepositoryError

    try:
        version = Repository(Path(args.dir)).publish()
    except RepositoryError as error:
        raise UserError(str(error)) from None
    print(f"published snapshot version {version}")
    return Exit.OK


def bundle_build(args: argparse.Namespace) -> int:
    """``ota bundle build --version V --out FILE``: a wheelhouse bundle of the project."""
    from edge_agent.ota.bundle import build_wheelhouse_bundle
    from edge_agent.ota.errors import OtaError

    try:
        manifest = build_wheelhouse_bundle(
            Path(args.project), args.version, Path(args.out), args.hardware_id
        )
    except OtaError as error:
        raise UserError(str(error)) from None
    print(f"{args.out}: {manifest.name} {manifest.version} for {', '.join(manifest.hardware_ids)}")
    return Exit.OK


def provision(args: argparse.Namespace) -> int:
    """``ota provision``: first slot, ``current`` link and trust anchor (factory step)."""
    from edge_agent.durable import write_bytes_atomic
    from edge_agent.ota.bundle import BundleManifest, launcher_script, pack_bundle, read_manifest
    from edge_agent.ota.errors import OtaError
    from edge_agent.ota.installers import ABInstaller
    from edge_agent.ota.layout import OtaLayout
    from edge_agent.ota.state import OtaState, StateStore
    from edge_agent.version import __version__

    layout = OtaLayout.for_state_dir(Path(args.state_dir))
    if layout.provisioned() and not args.force:
        raise UserError(f"{layout.root} is already provisioned (use --force to redo it)")
    root = Path(args.root)
    try:
        root_bytes = root.read_bytes()
        json.loads(root_bytes)
    except (OSError, ValueError) as error:
        raise UserError(f"--root {root}: not readable root metadata: {error}") from None
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.current.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="edge-agent-provision-") as scratch:
        bundle = Path(args.bundle) if args.bundle else Path(scratch) / "running.bundle"
        if not args.bundle:
            payload = Path(scratch) / "payload"
            (payload / "bin").mkdir(parents=True)
            (payload / "bin" / "edge-agent").write_text(launcher_script(sys.executable))
            (payload / "bin" / "edge-agent").chmod(0o755)
            hardware = args.hardware_id or ["generic-linux"]
            pack_bundle(payload, BundleManifest(version=__version__, hardware_ids=hardware), bundle)
        try:
            manifest = read_manifest(bundle)
            ABInstaller(layout).install(bundle, "a", manifest, 4 * 1024**3)
        except OtaError as error:
            raise UserError(f"provisioning failed: {error}") from None
    layout.switch_to("a")
    shutil.rmtree(layout.tuf_dir, ignore_errors=True)
    write_bytes_atomic(layout.tuf_dir / "root.json", root_bytes)
    StateStore(layout.state_file).save(OtaState(floor_version=manifest.version))
    print(f"{layout.root}: slot a holds {manifest.name} {manifest.version}; current -> slots/a")
    return Exit.OK


def status(args: argparse.Namespace) -> int:
    """``ota status``: state machine, running slot and version, recent install log.

    Never fails on what it reads: a state file this version does not understand is shown
    with its ``read_warning``, an unreadable install log as ``log_warning``.
    """
    from edge_agent.ota.layout import OtaLayout
    from edge_agent.ota.state import InstallLog, StateStore

    layout = OtaLayout.for_state_dir(Path(args.state_dir))

    active = layout.active_slot()
    state = StateStore(layout.state_file).load()
    log_warning = ""
    try:
        log = InstallLog(layout.log_file).records()[-STATUS_LOG_RECORDS:]
    except OSError as error:
        log, log_warning = [], f"{layout.log_file} cannot be read ({error.strerror or error})"
    report: dict[str, Any] = {
        "provisioned": active is not None,
        "active_slot": active,
        "active_version": layout.slot_version(active),
        "state": state.to_json(),
        "read_warning": state.read_warning,
        "log": log,
        "log_warning": log_warning,
    }
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return Exit.OK
    shown = report["state"]
    print(f"slot {active} ({report['active_version']}); phase {shown['phase']}", end="")
    print(f" job {shown['job_id']} -> {shown['version']}" if shown["job_id"] else "")
    for warning in (state.read_warning, log_warning):
        if warning:
            print(f"  warning: {warning}")
    if shown["waiting"]:
        print(f"  {shown['waiting']}")
    if shown["reason"]:
        print(f"  {shown['code']}: {shown['reason']}")
    for record in log[-5:]:
        print(
            f"  {record.get('job_id')}: {record.get('old_version')} -> "
            f"{record.get('new_version')} {record.get('result')} {record.get('reason', '')}"
        )
    return Exit.OK


def _register_repo(repo: argparse.ArgumentParser) -> None:
    """The ``ota repo`` commands."""
    repo_commands = repo.add_subparsers(dest="repo_command", required=True, metavar="REPO_COMMAND")
    init = repo_commands.add_parser("init", help="create keys and signed root metadata")
    init.add_argument("dir")
    init.add_argument("--threshold", action="append", metavar="ROLE=N", help="keys needed")
    init.add_argument("--expiry-days", action="append", metavar="ROLE=DAYS")
    init.set_defaults(handler=repo_init)
    add = repo_commands.add_parser("add", help="add a bundle as a signed target")
    add.add_argument("dir")
    add.add_argument("bundle")
    add.add_argument("--version", required=True)
    add.add_argument("--target", help="target name (default: from the manifest)")
    add.add_argument("--hardware-id", action="append", help="(default: from the manifest)")
    add.add_argument("--kind", choices=["ab", "rauc"], default="ab")
    add.set_defaults(handler=repo_add)
    add_config = repo_commands.add_parser(
        "add-config",
        help="add a config (TOML/JSON [modules.NAME] tables) as a signed target",
    )
    add_config.add_argument("dir")
    add_config.add_argument("file", help="TOML or JSON with [modules.NAME] tables only")
    add_config.add_argument("--version", required=True, help="dotted numbers, always increasing")
    add_config.add_argument("--target", default="agent-config", help="(default: agent-config)")
    add_config.add_argument(
        "--hardware-id", action="append", required=True, help="hardware it is for (repeat)"
    )
    add_config.set_defaults(handler=repo_add_config)
    rotate = repo_commands.add_parser("rotate", help="replace a role's keys (new signed root)")
    rotate.add_argument("dir")
    rotate.add_argument("role", choices=ROLES)
    rotate.set_defaults(handler=repo_rotate)
    publish = repo_commands.add_parser("publish", help="sign a new snapshot and timestamp")
    publish.add_argument("dir")
    publish.set_defaults(handler=repo_publish)


def register(sub: SubParsers) -> None:  # type: ignore[valid-type]
    """Add the ``ota`` command group."""
    ota = sub.add_parser("ota", help="over-the-air updates: repository, bundles, status")  # type: ignore[attr-defined]
    groups = ota.add_subparsers(dest="ota_command", required=True, metavar="OTA_COMMAND")

    _register_repo(groups.add_parser("repo", help="a TUF repository for bundles and configs"))

    bundle = groups.add_parser("bundle", help="agent bundles")
    bundle_commands = bundle.add_subparsers(dest="bundle_command", required=True, metavar="CMD")
    build = bundle_commands.add_parser("build", help="build a wheelhouse bundle of the project")
    build.add_argument("--version", required=True)
    build.add_argument("--out", required=True)
    build.add_argument("--project", default=".", help="project directory (default: .)")
    build.add_argument("--hardware-id", action="append", help="compatible hardware (repeat)")
    build.set_defaults(handler=bundle_build)

    prov = groups.add_parser("provision", help="install the first slot and the trust anchor")
    prov.add_argument("--state-dir", required=True)
    prov.add_argument("--root", required=True, help="the repository's root.json")
    prov.add_argument("--bundle", help="bundle for slot a (default: this installation)")
    prov.add_argument("--hardware-id", action="append")
    prov.add_argument("--force", action="store_true")
    prov.set_defaults(handler=provision)

    show = groups.add_parser("status", help="OTA state, slots and install log")
    show.add_argument("--state-dir", default="/var/lib/edge-agent")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=status)
