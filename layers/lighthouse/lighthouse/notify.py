"""In-process change notifications for long-polls.

A long-poll (GET /elicitation/status?wait=, GET /elicitation/pending?wait=) must notice a change
written by another request. Storage stays the source of truth and is re-read with a growing pause;
when the writer runs in the same process (the embedded local cloud, or a warm Lambda container that
served both requests), it also wakes the waiters at once, so they need not keep polling storage.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

S = TypeVar("S")


@dataclass(frozen=True)
class Pacing:
    """How often a long-poll re-reads storage while it waits: from `first` seconds, doubling up to
    `maximum`. Storage is the truth; the notifier only wakes a waiter early for writes made in its
    own process. On AWS most writes come from other containers, so the maximum is short (1 s); on the
    embedded cloud every write is in-process and notified, so storage is only a safety net and a
    longer maximum keeps hundreds of idle waiters from re-reading it every second."""

    first: float = 0.02
    maximum: float = 1.0

    def pauses(self) -> Iterator[float]:
        """The pauses between re-reads. Each is jittered down by up to half, so waiters that began
        together (a burst of clients) do not all re-read storage in the same instant ever after."""
        pause = self.first
        while True:
            yield pause * random.uniform(0.5, 1.0)
            pause = min(pause * 2, self.maximum)


class Notifier:
    """Generations per topic; one condition per topic, so a write wakes only that topic's waiters."""

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.pacing = pacing or Pacing()
        self._lock = threading.Lock()
        self._generations: dict[str, int] = {}
        self._conditions: dict[str, threading.Condition] = {}

    def _condition(self, topic: str) -> threading.Condition:
        condition = self._conditions.get(topic)
        if condition is None:
            condition = self._conditions[topic] = threading.Condition(self._lock)
        return condition

    def generation(self, topic: str) -> int:
        with self._lock:
            return self._generations.get(topic, 0)

    def notify(self, topic: str) -> None:
        with self._lock:
            self._generations[topic] = self._generations.get(topic, 0) + 1
            condition = self._conditions.pop(topic, None)  # waiters re-create it; idle topics cost nothing
            if condition is not None:
                condition.notify_all()

    def wait(self, topic: str, seen: int, timeout: float) -> int:
        """Block until `topic` moves past generation `seen` or `timeout` passes; return the generation."""
        with self._lock:
            if self._generations.get(topic, 0) == seen:
                self._condition(topic).wait(timeout=timeout)
            return self._generations.get(topic, 0)


notifier = Notifier()

# Admission to block: set by the API around a long-poll request, so the lease that bounds open
# waits is taken only when a wait is about to block (a long-poll that can answer at once takes none).
_admission: ContextVar[Callable[[], None] | None] = ContextVar("long_poll_admission", default=None)


def admit() -> None:
    """Called right before a long-poll blocks; may raise RateLimited (too many open waits)."""
    acquire = _admission.get()
    if acquire is not None:
        acquire()


@contextmanager
def admission(acquire: Callable[[], None]) -> Iterator[None]:
    token = _admission.set(acquire)
    try:
        yield
    finally:
        _admission.reset(token)


def stream_topic(stream_id: str) -> str:
    return f"stream:{stream_id}"


def model_topic(model: str) -> str:
    return f"model:{model}"


def await_stream(
    stream: str,
    state: S,
    *,
    finished: Callable[[S], bool],
    reload: Callable[[], S],
    current_version: Callable[[str], int],
    now: Callable[[], float],
    wait_seconds: float,
    wait: Callable[[str, int, float], int] | None = None,
    on: Notifier = notifier,
) -> S:
    """Hold a long-poll on an event stream until `finished(state)` or the wait runs out.

    Each wake-up costs one small read (the stream's version); the state is reloaded only if it moved.
    `wait` defaults to the notifier's (tests pass one that moves their clock instead).
    """
    pause_for = wait or on.wait
    topic = stream_topic(stream)
    seen = on.generation(topic)
    deadline, pauses, version = now() + wait_seconds, on.pacing.pauses(), -1
    while not finished(state) and now() < deadline:
        admit()
        seen = pause_for(topic, seen, min(next(pauses), max(0.0, deadline - now())))
        latest = current_version(stream)
        if latest != version:
            version = latest
            state = reload()
    return state
