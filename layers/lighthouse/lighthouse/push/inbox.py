"""What the WebSocket API pushed to this process, for tools that wait on it instead of polling.

The push client (lighthouse_tools.push_client) puts each envelope here as it arrives; a tool waits
for the first that matches. While push is not live (`live` unset: not connected, or refused because
the agent's `websocket_push` flag is off) tools long-poll the HTTP API as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

KEEP = 1000  # envelopes no tool asked for are dropped oldest first beyond this


class Inbox:
    def __init__(self, live: threading.Event | None = None) -> None:
        self.live = live or threading.Event()
        self.refused = threading.Event()  # push will not come (the WebSocket API refused the agent)
        self._was_live = False
        self._items: list[dict[str, Any]] = []
        self._changed = threading.Condition()

    def ready(self, grace_seconds: float) -> bool:
        """Whether push is live. Before it has ever been live, a first connect may be in progress (on an
        emulator the first $connect is a cold start of seconds): wait up to `grace_seconds` for it,
        unless push was refused. Once it has been live, a dropped connection means long-poll now."""
        if self.live.is_set():
            self._was_live = True
            return True
        if self._was_live or self.refused.is_set():
            return False
        deadline = time.monotonic() + grace_seconds
        while not self.live.is_set() and not self.refused.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.live.wait(min(remaining, 0.1))
        self._was_live = self.live.is_set()
        return self._was_live

    def put(self, envelope: dict[str, Any]) -> None:
        with self._changed:
            self._items.append(envelope)
            del self._items[:-KEEP]
            self._changed.notify_all()

    def take(self, match: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any] | None:
        """The first envelope that matches (removed from the inbox), waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index, envelope in enumerate(self._items):
                    if match(envelope):
                        return self._items.pop(index)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)
