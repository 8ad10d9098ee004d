"""Waits resume after a restart.

Step Functions executions do not survive the process, so each one that was running is started
again under a linked name (`<name>-restart<n>`; the old one shows as aborted with
`States.ServiceRestart` and names its successor), with the same input, and a `timeout_seconds` in it
shortened by the time that has passed since the old one started, so a deadline stays where it was
(one that passed while the platform was down fires at once). What the new execution then does is
decided by the event log, which stays the truth: every step it runs again is idempotent (an
elicitation's wait records the new task token, or resumes at once if the question was answered; an
expert round re-asks only the experts without a vote; a pipeline's finished stages return their
recorded results without running).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger("lighthouse.localcloud.durable")

_RESTART_SUFFIX = re.compile(r"-restart(\d+)$")
MAX_NAME = 80


def restart_name(name: str, taken: set[str]) -> str:
    match = _RESTART_SUFFIX.search(name)
    base, number = (name[: match.start()], int(match.group(1)) + 1) if match else (name, 1)
    while True:
        suffix = f"-restart{number}"
        candidate = base[: MAX_NAME - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
        number += 1


def resumed_input(record: dict[str, Any], now: datetime) -> str:
    """The old input, with what is left of its `timeout_seconds` (at least 1: Step Functions' minimum)."""
    try:
        payload = json.loads(record["input"])
    except (TypeError, ValueError):
        return str(record["input"])
    if isinstance(payload, dict) and isinstance(payload.get("timeout_seconds"), int | float):
        started: datetime = record["start_date"]
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        elapsed = (now - started).total_seconds()
        payload["timeout_seconds"] = max(1, math.ceil(payload["timeout_seconds"] - elapsed))
    return json.dumps(payload)


def resume_executions(
    stepfunctions: Any,
    interrupted: list[dict[str, Any]],
    taken: set[str],
    link: Callable[[dict[str, Any], str], None],
    pace: Callable[[], None] = lambda: None,
) -> list[str]:
    """Start each interrupted execution again, oldest first; returns the new ARNs (one that cannot
    start is logged). `pace` is called before each start: a thousand executions started at once
    would each invoke their first task at once, and tasks that wait that long time out."""
    started = []
    for record in sorted(interrupted, key=lambda r: r["start_date"]):
        pace()
        name = restart_name(record["name"], taken)
        taken.add(name)
        try:
            arn = stepfunctions.start_execution(
                stateMachineArn=record["state_machine_arn"],
                name=name,
                input=resumed_input(record, datetime.now(UTC)),
            )["executionArn"]
        except Exception as error:
            logger.error("could not resume execution %s: %s", record["arn"], error)
            continue
        link(record, arn)
        started.append(arn)
    if started:
        logger.warning("resumed %d executions interrupted by the last shutdown", len(started))
    return started
