"""What the API served lately, kept in the container that served it."""

from __future__ import annotations

from collections import deque
from threading import Lock


class RecentRequests:
    """The last N API requests this container served (status, milliseconds): the overview's API figures.

    Per container, like a Lambda's own view of itself; CloudWatch's API Gateway metrics are the
    fleet-wide figures on AWS (the dashboard shows those).
    """

    def __init__(self, size: int = 1000) -> None:
        self._requests: deque[tuple[int, float]] = deque(maxlen=size)
        self._lock = Lock()

    def record(self, status: int, milliseconds: float) -> None:
        with self._lock:
            self._requests.append((status, milliseconds))

    def figures(self) -> tuple[int, int, float | None]:
        """(requests, 5xx answers, p99 milliseconds) over the window."""
        with self._lock:
            requests = list(self._requests)
        errors = sum(1 for status, _ in requests if status >= 500)
        latencies = sorted(ms for _, ms in requests)
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else None
        return len(requests), errors, p99
