"""A token bucket per key in DynamoDB, updated with an optimistic conditional write.

Refill depends on the time since the last update, which an update expression cannot compute,
so each consume reads the bucket and writes it back on condition that nobody else did meanwhile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lighthouse.clock import Clock
from lighthouse.errors import DependencyUnavailable, RateLimited

MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Limit:
    per_minute: int
    burst: int

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0


def refill(tokens: float, elapsed_seconds: float, limit: Limit) -> float:
    return min(float(limit.burst), tokens + max(0.0, elapsed_seconds) * limit.per_second)


def retry_after(tokens: float, cost: float, limit: Limit) -> int:
    return max(1, math.ceil((cost - tokens) / limit.per_second))


class TokenBucketLimiter:
    def __init__(self, client: Any, table: str, clock: Clock) -> None:
        self._client = client
        self._table = table
        self._clock = clock

    def consume(self, key: str, limit: Limit, cost: float = 1.0) -> float:
        """Take `cost` tokens from the bucket `key`; returns what is left, or raises RateLimited."""
        for _attempt in range(MAX_ATTEMPTS):
            now = self._clock.now()
            item = self._client.get_item(TableName=self._table, Key={"bucket_id": {"S": key}}, ConsistentRead=True).get(
                "Item"
            )
            if item:
                stamp = item["updated_at"]["N"]
                tokens = refill(float(item["tokens"]["N"]), now - float(stamp), limit)
            else:
                stamp, tokens = None, float(limit.burst)
            if tokens < cost:
                scope = key.split("#")[0]
                self._count_rejection(scope)
                raise RateLimited(
                    f"rate limit exceeded for {scope}: {limit.per_minute}/min, burst {limit.burst}",
                    retry_after(tokens, cost, limit),
                )
            condition = "attribute_not_exists(bucket_id)" if stamp is None else "updated_at = :stamp"
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "Item": {
                    "bucket_id": {"S": key},
                    "tokens": {"N": repr(tokens - cost)},
                    "updated_at": {"N": repr(now)},
                    # An idle bucket refills completely; after that its row carries no information.
                    "expires_at": {"N": str(int(now + limit.burst / limit.per_second) + 60)},
                },
                "ConditionExpression": condition,
            }
            if stamp is not None:
                kwargs["ExpressionAttributeValues"] = {":stamp": {"N": stamp}}
            try:
                self._client.put_item(**kwargs)
            except ClientError as error:
                if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                    continue
                raise
            return tokens - cost
        raise DependencyUnavailable(f"rate limiter for {key} is too contended to update")

    def _count_rejection(self, scope: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={"bucket_id": {"S": f"rejections#{scope}"}},
            UpdateExpression="ADD rejected :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    def rejections(self, scope: str) -> int:
        """How many requests the limiter has refused in `scope` (the part of the key before '#')."""
        item = self._client.get_item(TableName=self._table, Key={"bucket_id": {"S": f"rejections#{scope}"}}).get("Item")
        return int(item["rejected"]["N"]) if item else 0
