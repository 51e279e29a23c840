"""``edge-agent cloud check``: try the cloud link's settings once and say what happened.

Contributed to the ``edge-agent`` command line through the entry-point group
``edge_agent.commands`` (see ``edge_agent.cli.contributed``): the runtime does not know
this module. Importing this file stays cheap (MQTT and TLS load only when the check runs),
because every ``edge-agent`` invocation builds the parser.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from edge_agent.cli.exit_codes import Exit, UserError
from edge_agent.config import ConfigError, load_config

BROKER_UNREACHABLE = Exit.BROKER_UNREACHABLE


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``cloud`` command group to the ``edge-agent`` parser."""
    cloud = sub.add_parser("cloud", help="cloud link tools")
    actions = cloud.add_subparsers(dest="cloud_command", required=True, metavar="COMMAND")
    check = actions.add_parser(
        "check",
        help="connect once with the cloud-link settings of a config (TLS, identity, ACL); "
        f"exit {BROKER_UNREACHABLE} when it fails",
    )
    check.add_argument("--config", required=True, help="path to agent.toml")
    check.add_argument("--module", default="cloud-link", help="the link module's name")
    check.set_defaults(handler=check_link)


def check_link(args: argparse.Namespace) -> int:
    """Connect (without touching the agent's own session), subscribe, report, disconnect."""
    from edge_agent.modules.cloud_link.config import CloudLinkConfig

    try:
        loaded = load_config(Path(args.config))
    except ConfigError as error:
        raise UserError("\n".join(error.lines())) from None
    plan = loaded.modules.get(args.module)
    if plan is None or not isinstance(plan.config, CloudLinkConfig):
        raise UserError(f"{args.config}: no enabled cloud link module {args.module!r}")
    vehicle_id = loaded.agent.agent.vehicle_id
    try:
        message = asyncio.run(_check(plan.config, vehicle_id))
    except UserError:
        raise
    except Exception as error:  # what the broker or TLS said, in one line
        print(f"edge-agent: cloud check: {plan.config.host}:{plan.config.port}: {error}")
        return BROKER_UNREACHABLE
    print(message)
    return 0


async def _check(config: object, vehicle_id: str) -> str:
    from edge_agent.modules.cloud_link.client import LinkClient, TlsSetupError, tls_context
    from edge_agent.modules.cloud_link.config import CloudLinkConfig
    from edge_agent.modules.cloud_link.topics import vehicle_topic

    assert isinstance(config, CloudLinkConfig)
    context = None
    if config.tls is not False:
        try:
            context = await asyncio.to_thread(tls_context, config.tls)
        except TlsSetupError as error:
            raise UserError(str(error)) from None
    probe = config.model_copy(update={"session_expiry_s": 0})
    client = LinkClient(
        probe, vehicle_id, context, identifier=f"{vehicle_id}-check", last_will=False
    )
    started = time.monotonic()
    async with asyncio.timeout(config.connect_timeout_s * 3 + 1):
        await client.__aenter__()
    try:
        reasons = await client.subscribe(vehicle_topic(vehicle_id, "commands/+"), qos=1)
        refused = any(getattr(reason, "is_failure", False) for reason in reasons)
    finally:
        await client.__aexit__(None, None, None)
    elapsed_ms = (time.monotonic() - started) * 1000
    security = "plaintext (tls = false)" if context is None else "mutual TLS"
    subscribe = "refused by the broker" if refused else "accepted"
    return (
        f"connected to {config.host}:{config.port} as {vehicle_id} over {security} "
        f"in {elapsed_ms:.0f} ms; subscription to commands {subscribe}"
    )
