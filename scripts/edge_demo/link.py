"""The vehicle's uplink as a TCP relay the demo can cut: a link outage on demand.

The agent's cloud link connects to the relay, the relay to the broker. :meth:`LinkRelay.cut`
drops every open connection and refuses new ones (accepts and closes them at once, as a dead
cellular link looks to a client) until :meth:`LinkRelay.restore`. The cloud stand-in talks
to the broker directly, so only the vehicle loses its link.
"""

from __future__ import annotations

import asyncio
import contextlib


class LinkRelay:
    """A loopback TCP relay to ``host:port`` with a switch."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.listen_port = 0
        self.up = True
        self.bytes_up = 0
        self.bytes_down = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen on a free loopback port; return it."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.listen_port = int(self._server.sockets[0].getsockname()[1])
        return self.listen_port

    def cut(self) -> None:
        """Drop every connection now and refuse new ones."""
        self.up = False
        for writer in list(self._writers):
            _abort(writer)

    def restore(self) -> None:
        """Accept and relay connections again."""
        self.up = True

    async def close(self) -> None:
        """Stop listening and drop everything."""
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            _abort(writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            _abort(writer)
            return
        self.connections += 1
        self._writers.update((writer, upstream_writer))
        up = asyncio.create_task(self._pipe(reader, upstream_writer, "up"))
        down = asyncio.create_task(self._pipe(upstream_reader, writer, "down"))
        self._tasks.update((up, down))
        try:
            await asyncio.wait((up, down), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (up, down):
                task.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
            self._tasks.difference_update((up, down))
            for side in (writer, upstream_writer):
                self._writers.discard(side)
                _abort(side)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await reader.read(65536):
                if direction == "up":
                    self.bytes_up += len(chunk)
                else:
                    self.bytes_down += len(chunk)
                writer.write(chunk)
                await writer.drain()


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()
