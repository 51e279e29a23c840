"""``edge-agent-tuf-client``: the client-under-test CLI of the TUF conformance suite.

The upstream suite (github.com/theupdateframework/tuf-conformance) drives a client through
``init``, ``refresh`` and ``download`` (its CLIENT-CLI.md) against repositories it crafts,
and checks what the client trusts and fetches. This executable runs the agent's own OTA
path for that: :class:`~edge_agent.ota.client.TufClient` (python-tuf's updater with our
stall-bounded fetcher) for metadata, and for targets our resumable downloader
(:func:`~edge_agent.ota.download.download`, bounded by the signed length) followed by
:func:`~edge_agent.ota.client.verify_file` against the signed hashes, as an OTA job does.

Exit 0 on success, 1 on any failure (one line on stderr saying why).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from edge_agent.ota.client import ROOT_FILE, TufClient, verify_file
from edge_agent.ota.download import DownloadLimits, download
from edge_agent.ota.errors import OtaError

STALL_TIMEOUT_S = 10.0
DEADLINE_S = 120.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-agent-tuf-client",
        description="TUF conformance client-under-test over edge-agent's OTA client",
    )
    parser.add_argument("--metadata-dir", required=True, type=Path)
    parser.add_argument("--metadata-url", default="")
    parser.add_argument("--target-name", action="append", default=[])
    parser.add_argument("--target-dir", type=Path)
    parser.add_argument("--target-base-url", default="")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init", help="trust the given root metadata")
    init.add_argument("trusted_root", type=Path)
    commands.add_parser("refresh", help="update the top-level metadata")
    commands.add_parser("download", help="download and verify targets")
    return parser


def init(metadata_dir: Path, trusted_root: Path) -> None:
    """Install ``trusted_root`` as the trust anchor (no request is made; no check expected)."""
    metadata_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(trusted_root, metadata_dir / ROOT_FILE)


def stored_name(target_path: str) -> str:
    """The file name of a target in the target directory: one flat, reversible name."""
    return urllib.parse.quote(target_path, safe="")


def fetch_targets(client: TufClient, names: Sequence[str], target_dir: Path) -> None:
    """Download ``names`` in order with one refreshed updater; OtaError at the first failure.

    A target already in ``target_dir`` with the signed length and hashes is not fetched
    again; a stale partial file is discarded first (it belonged to other content).
    """
    updater = client.refresh()
    limits = DownloadLimits(STALL_TIMEOUT_S, DEADLINE_S)
    target_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = client.resolve_path(name, updater)
        final = target_dir / stored_name(name)
        if final.is_file():
            try:
                verify_file(target.info, final)
            except OtaError:
                final.unlink()
            else:
                continue  # cached and still what the metadata signs
        part = final.with_name(final.name + ".part")
        part.unlink(missing_ok=True)
        try:
            download(target.url, part, target.info.length, limits)
            verify_file(target.info, part)
        except BaseException:
            # Unlike an OTA job, which resumes its .part, nothing unverified may stay here:
            # the target directory holds verified targets only.
            part.unlink(missing_ok=True)
            raise
        part.replace(final)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command of the conformance CLI; 0 on success, 1 on failure."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "init":
            init(args.metadata_dir, args.trusted_root)
            return 0
        client = TufClient(
            args.metadata_dir, args.metadata_url, args.target_base_url or "", STALL_TIMEOUT_S
        )
        if args.command == "refresh":
            client.refresh()
        else:
            if args.target_dir is None or not args.target_name:
                print(
                    "edge-agent-tuf-client: download needs --target-dir and --target-name",
                    file=sys.stderr,
                )
                return 1
            fetch_targets(client, args.target_name, args.target_dir)
    except (OtaError, OSError) as error:
        print(f"edge-agent-tuf-client: {error}", file=sys.stderr)
        return 1
    return 0
