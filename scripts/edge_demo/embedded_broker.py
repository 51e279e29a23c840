"""A plaintext, anonymous MQTT 3.1.1 broker on 127.0.0.1 for the demo only (amqtt).

``python -m edge_demo.embedded_broker --port N``; stops on SIGTERM or SIGINT. Never for a
vehicle or a bench: it has no TLS, no ACL and keeps nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys


async def serve(port: int) -> None:
    """Run the broker until SIGTERM or SIGINT."""
    from amqtt.broker import Broker  # type: ignore[import-untyped]

    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
    )
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await broker.shutdown()


def main() -> int:
    """Parse ``--port`` and serve."""
    parser = argparse.ArgumentParser(prog="python -m edge_demo.embedded_broker")
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
