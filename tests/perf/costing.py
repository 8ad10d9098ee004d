"""Calls per operation and dollars per 1,000 operations, from the local cloud's call counter.

A benchmark takes the counter's figures before and after what it measures (`counts(...)`: over
HTTP from `lighthouse up` in another process, or straight from an in-process LocalCloud) and
`priced(...)` turns the difference into calls per operation and cost (lighthouse_tools.costs).
"""

from __future__ import annotations

from typing import Any

import requests

from lighthouse_tools.costs import PRICES_SOURCE, cost_per_thousand, per_operation, usage_of
from lighthouse_tools.localcloud.calls import COUNTS_PATH


def counts(aws_endpoint_url: str) -> dict[str, Any]:
    """The counter of a local cloud in another process, with its functions' memory sizes."""
    response = requests.get(f"{aws_endpoint_url}{COUNTS_PATH}", timeout=30)
    response.raise_for_status()
    return dict(response.json())


def in_process_counts(cloud: Any) -> dict[str, Any]:
    """The same figures from a LocalCloud running in this process."""
    assert cloud.stack is not None
    functions = cloud.stack.functions.values()
    return {
        "calls": cloud.calls.snapshot().as_dict(),
        "memory_mb": {spec.logical_id: spec.memory_mb for spec in functions},
        "api_function": cloud.stack.api_function().logical_id,
    }


def _minus(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    def counter(name: str) -> dict[str, float]:
        earlier = before.get(name, {})
        difference = {key: value - earlier.get(key, 0) for key, value in after.get(name, {}).items()}
        return {key: value for key, value in difference.items() if value}

    return {
        "by_operation": counter("by_operation"),
        "invocations": counter("invocations"),
        "lambda_ms": counter("lambda_ms"),
        "dynamodb_units": counter("dynamodb_units"),
        "transitions": after.get("transitions", 0) - before.get("transitions", 0),
    }


def priced(before: dict[str, Any], after: dict[str, Any], operations: int) -> dict[str, Any]:
    """Per operation: AWS calls by the functions, Lambda invocations and time, request units and
    transitions; and USD per 1,000 operations by service."""
    difference = _minus(after["calls"], before["calls"])
    usage = usage_of(difference, after["memory_mb"], after["api_function"], operations)
    n = max(operations, 1)
    return {
        "operations": operations,
        "aws_calls_per_operation": round(sum(difference["by_operation"].values()) / n, 2),
        "calls_by_operation": {name: round(count / n, 2) for name, count in sorted(difference["by_operation"].items())},
        **per_operation(usage),
        "usd_per_1000_operations": cost_per_thousand(usage),
        "prices": PRICES_SOURCE,
    }
