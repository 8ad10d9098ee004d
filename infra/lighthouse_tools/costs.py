"""What the counted calls would cost on AWS: the benchmarks print it per 1,000 operations, so a
change that adds calls to a hot path shows up as money as well as milliseconds.

Prices are AWS's public on-demand list prices for us-east-1 (x86 Lambda, DynamoDB on-demand after
the November 2024 reduction, Step Functions Standard, SQS standard, API Gateway REST), without free
tiers or storage. DynamoDB request units follow DynamoDB's own rules (a write unit per KiB of the
item written, a read unit per 4 KiB read, half for an eventually consistent read, twice for
transactions) with item sizes computed from the request and response as DynamoDB sizes items.
Two approximations, both named where they are made: an UpdateItem is charged for what the request
carries (the stored item may be larger), and the event source mappings' SQS reads are charged as
one receive and one delete per message sent (Lambda batches them, so this is an upper bound).
Lambda time is the duration measured on the local cloud.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

PRICES_USD = {
    "lambda_request": 0.20 / 1_000_000,
    "lambda_gb_second": 0.0000166667,
    "dynamodb_write_unit": 0.625 / 1_000_000,
    "dynamodb_read_unit": 0.125 / 1_000_000,
    "stepfunctions_transition": 0.025 / 1_000,
    "sqs_request": 0.40 / 1_000_000,
    "apigateway_request": 3.50 / 1_000_000,
}
PRICES_SOURCE = "AWS public list prices, us-east-1, on-demand, no free tier (see lighthouse_tools/costs.py)"

_WRITE_UNIT_BYTES = 1024
_READ_UNIT_BYTES = 4096


# ---- DynamoDB request units ----------------------------------------------------------------------


def attribute_size(value: dict[str, Any]) -> int:
    """The size DynamoDB counts for one typed attribute value (its item size rules)."""
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        digits = str(inner).lstrip("-").replace(".", "").lstrip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(base64.b64decode(inner)) if isinstance(inner, str) else len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: member}) for member in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_size(member) for member in inner)
    if kind == "M":
        return 3 + item_size(inner) + len(inner)
    return len(str(inner))


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def _write_units(item: dict[str, Any]) -> int:
    return max(1, math.ceil(item_size(item) / _WRITE_UNIT_BYTES))


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / _READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def _updated_part(body: dict[str, Any]) -> dict[str, Any]:
    # Approximation: the request's key and values; the item DynamoDB charges for may be larger.
    return {**body.get("Key", {}), **body.get("ExpressionAttributeValues", {})}


def _transaction_write_units(request: dict[str, Any]) -> float:
    units = 0
    for action in request.get("TransactItems", []):
        for kind, body in action.items():
            item = body.get("Item") if kind == "Put" else _updated_part(body) if kind == "Update" else body.get("Key")
            units += 2 * _write_units(item or {})
    return float(units)


def _batch_write_units(request: dict[str, Any]) -> float:
    tables = request.get("RequestItems", {}).values()
    entries = [body for table in tables for entry in table for body in entry.values()]
    return float(sum(_write_units(body.get("Item") or body.get("Key") or {}) for body in entries))


_WRITES = {
    "PutItem": lambda request: float(_write_units(request.get("Item", {}))),
    "UpdateItem": lambda request: float(_write_units(_updated_part(request))),
    "DeleteItem": lambda request: float(_write_units(request.get("Key", {}))),
    "BatchWriteItem": _batch_write_units,
    "TransactWriteItems": _transaction_write_units,
}


def _items_read(operation: str, response: dict[str, Any]) -> list[dict[str, Any]]:
    if operation == "GetItem":
        return [response.get("Item", {})]
    if operation == "BatchGetItem":
        return [item for table in response.get("Responses", {}).values() for item in table]
    if operation == "TransactGetItems":
        return [entry.get("Item", {}) for entry in response.get("Responses", [])]
    return list(response.get("Items", []))  # Query, Scan


def dynamodb_units(operation: str, request: dict[str, Any], response: dict[str, Any]) -> tuple[float, float]:
    """(read units, write units) one DynamoDB request consumed."""
    if operation in _WRITES:
        return 0.0, _WRITES[operation](request)
    if operation not in ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"):
        return 0.0, 0.0
    sizes = [item_size(item) for item in _items_read(operation, response)]
    if operation in ("Query", "Scan"):  # one charge for the page, however many items
        return _read_units(sum(sizes), bool(request.get("ConsistentRead"))), 0.0
    if operation == "TransactGetItems":
        return sum(2 * _read_units(size, True) for size in sizes), 0.0
    consistent = operation == "GetItem" and bool(request.get("ConsistentRead"))
    return sum(_read_units(size, consistent) for size in sizes), 0.0


# ---- cost of a set of counted calls --------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """What a number of operations used, as the local cloud counted it."""

    operations: int
    lambda_invocations: int
    lambda_gb_seconds: float
    api_requests: int
    dynamodb_read_units: float
    dynamodb_write_units: float
    transitions: int
    sqs_requests: int


def usage_of(calls: dict[str, Any], memory_mb: dict[str, int], api_function: str, operations: int) -> Usage:
    """`calls` is `Calls.as_dict()` of the difference around the operations."""
    invocations: dict[str, int] = calls.get("invocations", {})
    lambda_ms: dict[str, float] = calls.get("lambda_ms", {})
    by_operation: dict[str, int] = calls.get("by_operation", {})
    sqs_calls = sum(n for name, n in by_operation.items() if name.startswith("sqs:"))
    sent = by_operation.get("sqs:SendMessage", 0) + by_operation.get("sqs:SendMessageBatch", 0)
    units = calls.get("dynamodb_units", {})
    return Usage(
        operations=operations,
        lambda_invocations=sum(invocations.values()),
        lambda_gb_seconds=sum(ms / 1000 * memory_mb.get(name, 128) / 1024 for name, ms in lambda_ms.items()),
        api_requests=invocations.get(api_function, 0),
        dynamodb_read_units=float(units.get("read", 0.0)),
        dynamodb_write_units=float(units.get("write", 0.0)),
        transitions=int(calls.get("transitions", 0)),
        # Approximation (module doc): one receive and one delete by the event source per message sent.
        sqs_requests=sqs_calls + 2 * sent,
    )


def cost_per_thousand(usage: Usage) -> dict[str, float]:
    """USD per 1,000 operations, by service and in total."""
    if usage.operations <= 0:
        return {}
    scale = 1000 / usage.operations
    parts = {
        "lambda": usage.lambda_invocations * PRICES_USD["lambda_request"]
        + usage.lambda_gb_seconds * PRICES_USD["lambda_gb_second"],
        "apigateway": usage.api_requests * PRICES_USD["apigateway_request"],
        "dynamodb": usage.dynamodb_read_units * PRICES_USD["dynamodb_read_unit"]
        + usage.dynamodb_write_units * PRICES_USD["dynamodb_write_unit"],
        "stepfunctions": usage.transitions * PRICES_USD["stepfunctions_transition"],
        "sqs": usage.sqs_requests * PRICES_USD["sqs_request"],
    }
    figures = {service: round(usd * scale, 6) for service, usd in parts.items()}
    figures["total"] = round(sum(parts.values()) * scale, 6)
    return figures


def per_operation(usage: Usage) -> dict[str, float]:
    """The usage divided by the operations: what one operation costs in calls and units."""
    n = max(usage.operations, 1)
    return {
        "lambda_invocations": round(usage.lambda_invocations / n, 2),
        "lambda_gb_seconds": round(usage.lambda_gb_seconds / n, 5),
        "api_requests": round(usage.api_requests / n, 2),
        "dynamodb_read_units": round(usage.dynamodb_read_units / n, 2),
        "dynamodb_write_units": round(usage.dynamodb_write_units / n, 2),
        "transitions": round(usage.transitions / n, 2),
        "sqs_requests": round(usage.sqs_requests / n, 2),
    }
