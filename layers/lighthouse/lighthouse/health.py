"""Dependency checks for GET /health: each one timed, none allowed to raise."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

Check = Callable[[], None]


def run_checks(checks: dict[str, Check]) -> tuple[bool, dict[str, Any]]:
    report: dict[str, Any] = {}
    healthy = True
    for name, check in checks.items():
        started = time.perf_counter()
        try:
            check()
            report[name] = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 2)}
        except Exception as error:  # a health report names every failure instead of raising
            healthy = False
            report[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    return healthy, report
