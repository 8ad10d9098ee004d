"""In-process wake-ups for long-polls."""

from __future__ import annotations

import threading
import time

from lighthouse.notify import Notifier


def test_a_waiter_wakes_when_its_topic_changes_and_not_for_others() -> None:
    notifier = Notifier()
    seen = notifier.generation("a")
    woke: list[float] = []

    def wait() -> None:
        started = time.monotonic()
        notifier.wait("a", seen, timeout=5)
        woke.append(time.monotonic() - started)

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.05)
    notifier.notify("b")
    time.sleep(0.05)
    assert woke == []
    notifier.notify("a")
    waiter.join(2)

    assert len(woke) == 1
    assert woke[0] < 1
    assert notifier.generation("a") == seen + 1


def test_a_change_before_waiting_returns_at_once_and_a_quiet_topic_times_out() -> None:
    notifier = Notifier()
    seen = notifier.generation("t")
    notifier.notify("t")
    assert notifier.wait("t", seen, timeout=5) == seen + 1

    started = time.monotonic()
    assert notifier.wait("quiet", 0, timeout=0.05) == 0
    assert time.monotonic() - started >= 0.05
