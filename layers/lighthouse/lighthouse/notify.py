"""In-process change notifications for long-polls.

A long-poll (GET /elicitation/status?wait=, GET /elicitation/pending?wait=) must notice a change
written by another request. Storage stays the source of truth and is re-read with a growing pause;
when the writer runs in the same process (the embedded local cloud, or a warm Lambda container that
served both requests), it also wakes the waiters at once, so they need not keep polling storage.
"""

from __future__ import annotations

import threading


class Notifier:
    """Generations per topic; one condition per topic, so a write wakes only that topic's waiters."""

    def __init__(self) -> None:
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


def stream_topic(stream_id: str) -> str:
    return f"stream:{stream_id}"


def model_topic(model: str) -> str:
    return f"model:{model}"
