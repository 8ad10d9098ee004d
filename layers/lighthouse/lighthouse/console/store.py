"""Step Functions, read: the state machines, their executions, definitions and histories."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from lighthouse.errors import NotFound

MAX_HISTORY_EVENTS = 2000


class Executions:
    """The read side of Step Functions the console needs; nothing here changes an execution."""

    def __init__(self, client: Any) -> None:
        self._sfn = client

    def state_machines(self) -> list[dict[str, Any]]:
        machines: list[dict[str, Any]] = []
        for page in self._sfn.get_paginator("list_state_machines").paginate():
            machines += page.get("stateMachines", [])
        return machines

    def executions(self, machine_arn: str, limit: int, status: str | None = None) -> tuple[list[dict[str, Any]], bool]:
        """The newest `limit` executions of a machine, and whether there were more."""
        arguments: dict[str, Any] = {"stateMachineArn": machine_arn, "maxResults": limit}
        if status:
            arguments["statusFilter"] = status
        try:
            page = self._sfn.list_executions(**arguments)
        except ClientError as error:
            if error.response["Error"]["Code"] == "StateMachineDoesNotExist":
                return [], False
            raise
        return page.get("executions", []), bool(page.get("nextToken"))

    def execution(self, execution_arn: str) -> dict[str, Any]:
        try:
            return dict(self._sfn.describe_execution(executionArn=execution_arn))
        except ClientError as error:
            if error.response["Error"]["Code"] in ("ExecutionDoesNotExist", "InvalidArn"):
                raise NotFound(f"no execution {execution_arn[:200]!r}") from error
            raise

    def definition(self, machine_arn: str) -> dict[str, Any]:
        described = self._sfn.describe_state_machine(stateMachineArn=machine_arn)
        return dict(json.loads(described["definition"]))

    def history(self, execution_arn: str) -> tuple[list[dict[str, Any]], bool]:
        """The execution's events, oldest first (at most MAX_HISTORY_EVENTS), and whether it was cut."""
        events: list[dict[str, Any]] = []
        token: str | None = None
        while len(events) < MAX_HISTORY_EVENTS:
            arguments: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
            if token:
                arguments["nextToken"] = token
            page = self._sfn.get_execution_history(**arguments)
            events += page.get("events", [])
            token = page.get("nextToken")
            if not token:
                return events, False
        return events[:MAX_HISTORY_EVENTS], True

    def count_failed_since(self, machine_arn: str, since: float, limit: int = 1000) -> int:
        executions, _ = self.executions(machine_arn, limit, status="FAILED")
        return sum(1 for e in executions if seconds(e.get("stopDate") or e.get("startDate")) >= since)


def seconds(value: Any) -> float:
    """A boto3 datetime (or a number) as Unix seconds."""
    return value.timestamp() if hasattr(value, "timestamp") else float(value or 0)
