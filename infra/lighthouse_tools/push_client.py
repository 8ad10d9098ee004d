"""The client side of real-time delivery: a WebSocket that stays connected and hands each
notification over once, in feed order.

Delivery is at least once and a connection may drop at any time, so the client keeps, per feed, the
last seq it handed over: a repeat is dropped; one that arrives ahead of a gap waits while the gap is
asked for again (`subscribe` with the last seq); after a reconnect the same `subscribe` gets what was
missed from the event store. `on_envelope` therefore sees each seq of a feed exactly once, in order.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

logger = logging.getLogger("lighthouse.push")
GAP_WAIT_SECONDS = 1.0  # how long an envelope ahead of a gap waits before the gap is asked for
MAX_BACKOFF_SECONDS = 10.0


class Refused(Exception):
    """The WebSocket API refused the connect (a bad token: 401; push not enabled for this agent: 403)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"WebSocket connect refused ({status}): {body.strip()[:300]}")
        self.status = status


class FeedOrder:
    """Per feed: the last seq handed over and what arrived ahead of it."""

    def __init__(self, last: dict[str, int | None]) -> None:
        self.last: dict[str, int | None] = dict(last)
        self._ahead: dict[str, dict[int, dict[str, Any]]] = {}
        self._gap_since: dict[str, float] = {}

    def accept(self, envelope: dict[str, Any], now: float) -> list[dict[str, Any]]:
        """What can be handed over now that `envelope` arrived (maybe nothing, maybe several)."""
        feed, seq = str(envelope["feed"]), int(envelope["seq"])
        last = self.last.get(feed)
        if last is None:  # subscribed for "what comes next": the first to come sets the start
            last = self.last[feed] = seq - 1
        if seq <= last:
            return []
        ahead = self._ahead.setdefault(feed, {})
        ahead[seq] = envelope
        ready: list[dict[str, Any]] = []
        while last + 1 in ahead:
            last += 1
            ready.append(ahead.pop(last))
        self.last[feed] = last
        if ahead:
            self._gap_since.setdefault(feed, now)
        else:
            self._gap_since.pop(feed, None)
        return ready

    def gaps(self, now: float) -> dict[str, int | None]:
        """Feeds whose gap has lasted GAP_WAIT_SECONDS: ask for them again from their last seq."""
        due = {feed: self.last.get(feed) for feed, since in self._gap_since.items() if now - since >= GAP_WAIT_SECONDS}
        for feed in due:
            self._gap_since[feed] = now
        return due


class PushClient:
    """Connects to `url` with a token from `token()`, subscribes `feeds` (feed -> last seq, None for
    only what comes next) and calls `on_envelope` for each notification, until `stop` is set."""

    def __init__(
        self,
        url: str,
        token: Callable[[], str],
        on_envelope: Callable[[dict[str, Any]], None],
        feeds: dict[str, int | None],
        *,
        on_status: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._url = url
        self._token = token
        self._on_envelope = on_envelope
        self._on_status = on_status or (lambda message: None)
        self.order = FeedOrder(feeds)
        self.connected = threading.Event()
        self.subscribed = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Stay connected until `stop`; a refusal (401/403) ends it by raising Refused."""
        backoff = 0.2
        while not stop.is_set():
            try:
                self._session(stop)
                backoff = 0.2
            except Refused:
                raise
            except Exception as error:
                logger.info("push connection lost (%s); reconnecting in %.1f s", error, backoff)
            finally:
                self.connected.clear()
                self.subscribed.clear()
            stop.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _session(self, stop: threading.Event) -> None:
        from websockets.exceptions import InvalidStatus
        from websockets.sync.client import connect

        url = f"{self._url}{'&' if '?' in self._url else '?'}token={quote(self._token(), safe='')}"
        try:
            socket = connect(url, open_timeout=10, close_timeout=2, max_size=256 * 1024)
        except InvalidStatus as error:
            status = error.response.status_code
            if status in (401, 403):
                raise Refused(
                    status, error.response.body.decode("utf-8", "replace") if error.response.body else ""
                ) from error
            raise
        with socket:
            self.connected.set()
            socket.send(json.dumps({"action": "subscribe", "feeds": self.order.last}))
            while not stop.is_set():
                try:
                    raw = socket.recv(timeout=0.25)
                except TimeoutError:
                    self._ask_for_gaps(socket)
                    continue
                self._handle(json.loads(raw))
                self._ask_for_gaps(socket)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "subscribed":
            self.subscribed.set()
            self._on_status(message)
        elif kind == "error":
            logger.warning("push: %s: %s", message.get("code"), message.get("message"))
            self._on_status(message)
        elif "seq" in message and "feed" in message:
            for envelope in self.order.accept(message, time.monotonic()):
                self._on_envelope(envelope)

    def _ask_for_gaps(self, socket: Any) -> None:
        gaps = self.order.gaps(time.monotonic())
        if gaps:
            socket.send(json.dumps({"action": "subscribe", "feeds": gaps}))
