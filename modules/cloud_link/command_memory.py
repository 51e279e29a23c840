"""Command ids seen lately, kept on disk so a redelivery after a restart never runs twice.

QoS 1 delivers at least once, and a persistent session redelivers an unacknowledged command
after the agent restarts. The memory holds the last ``capacity`` ids with their reply (or
``None`` while the command runs) in one small JSON file, replaced atomically. An id is written
down before its command runs, so a command cut short by a crash is refused as a duplicate
after the restart rather than run a second time.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

from edge_agent.config.desired import store_document
from edge_agent.untrusted import UntrustedDataError, load_json_bounded

MEMORY_FILE = "commands-seen.json"
CAPACITY = 256
# A reply larger than this is not kept whole: a redelivery then gets a duplicate refusal.
MAX_KEPT_REPLY_BYTES = 8 * 1024
MAX_FILE_BYTES = CAPACITY * (MAX_KEPT_REPLY_BYTES + 512)


class CommandMemory:
    """The last ``capacity`` command ids and their replies, oldest first, durable if ``path``."""

    def __init__(self, path: Path | None, capacity: int = CAPACITY) -> None:
        self.path = path
        self.capacity = capacity
        self._replies: OrderedDict[str, dict[str, Any] | None] = OrderedDict()
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read the ids kept by an earlier run; a missing or damaged file is an empty memory."""
        if self.path is None:
            return
        try:
            raw = await asyncio.to_thread(self.path.read_bytes)
            kept = load_json_bounded(raw, max_bytes=MAX_FILE_BYTES, what=str(self.path))
        except (OSError, UntrustedDataError):
            return
        entries = kept.get("commands") if isinstance(kept, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                reply = entry.get("reply")
                self._put(entry["id"], reply if isinstance(reply, dict) else None)

    def __contains__(self, command_id: str) -> bool:
        return command_id in self._replies

    def reply_for(self, command_id: str) -> dict[str, Any] | None:
        """The kept reply of ``command_id`` (None: still running, or cut short by a restart)."""
        return self._replies.get(command_id)

    async def remember(self, command_id: str, reply: dict[str, Any] | None) -> None:
        """Record ``command_id`` (with its reply once there is one) and write the memory down."""
        if reply is not None and len(json.dumps(reply)) > MAX_KEPT_REPLY_BYTES:
            reply = None
        self._put(command_id, reply)
        await self._save()

    def _put(self, command_id: str, reply: dict[str, Any] | None) -> None:
        self._replies[command_id] = reply
        self._replies.move_to_end(command_id)
        while len(self._replies) > self.capacity:
            self._replies.popitem(last=False)

    async def _save(self) -> None:
        if self.path is None:
            return
        path = self.path
        async with self._lock:  # one writer at a time, each with the latest snapshot
            document = {
                "commands": [{"id": key, "reply": value} for key, value in self._replies.items()]
            }
            await asyncio.to_thread(store_document, path, document)
