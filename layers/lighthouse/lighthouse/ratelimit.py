"""A token-bucket rate limiter in DynamoDB, one atomic conditional update per request.

It is the generic cell rate algorithm (GCRA), which behaves exactly like a token bucket of `burst`
tokens refilled at `per_minute`: instead of a token count the row keeps the "theoretical arrival
time" (tat) at which the bucket would be full again. A request is allowed when, after it, the
bucket would not be more than `burst` intervals behind; both cases are single UpdateItem calls whose
conditions make the check and the write one atomic step, so concurrent requests never overspend.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lighthouse.clock import Clock
from lighthouse.errors import DependencyUnavailable, RateLimited

MAX_ATTEMPTS = 16
# When a bucket's tat sits right at "now" (requests arriving at about the limit's rate, all at once),
# the busy and idle updates can each lose to the other in turn; after two lost tries a request waits
# a random moment (full jitter, doubling, at most 50 ms) so that the racers fall out of step.
JITTER_AFTER = 2
MAX_JITTER_SECONDS = 0.05


@dataclass(frozen=True)
class Limit:
    per_minute: int
    burst: int

    @property
    def interval(self) -> float:
        """Seconds one token takes to come back."""
        return 60.0 / self.per_minute


def retry_after(tat: float, now: float, limit: Limit, cost: float = 1.0) -> int:
    """Whole seconds until a request of `cost` would be allowed."""
    return max(1, math.ceil(tat + cost * limit.interval - limit.burst * limit.interval - now))


def tokens_left(tat: float, now: float, limit: Limit) -> float:
    return max(0.0, limit.burst - max(0.0, tat - now) / limit.interval)


@dataclass(frozen=True)
class _Attempt:
    applied: bool
    tat: float | None  # the new tat if applied; else the row's (None: no row yet)
    row_returned: bool = True  # False: the engine did not return the row on a failed condition


# Buckets whose last tat this container remembers, so it can pick the update that will succeed.
MAX_REMEMBERED = 10_000


class TokenBucketLimiter:
    """`consume` is one conditional UpdateItem when this container has seen the bucket lately (it
    knows whether the bucket is busy or idle) and at most two otherwise: a failed condition returns
    the row as it is (ReturnValuesOnConditionCheckFailure), so the second try is the right one."""

    def __init__(self, client: Any, table: str, clock: Clock) -> None:
        self._client = client
        self._table = table
        self._clock = clock
        self._remembered: dict[str, float] = {}

    def consume(self, key: str, limit: Limit, cost: float = 1.0) -> float:
        """Take `cost` tokens from the bucket `key`; returns the tokens left, or raises RateLimited."""
        step = cost * limit.interval
        known: float | None = self._remembered.get(key)
        for attempt in range(MAX_ATTEMPTS):
            now = self._clock.now()
            if known is not None and known + step - now > limit.burst * limit.interval:
                scope = key.split("#")[0]
                self._count_rejection(scope)
                raise RateLimited(
                    f"rate limit exceeded for {scope}: {limit.per_minute}/min, burst {limit.burst}",
                    retry_after(known, now, limit, cost),
                )
            expires = {"N": str(int(now + limit.burst * limit.interval) + 60)}
            if known is not None and known >= now:
                # A busy bucket: push tat forward (the condition re-checks the burst atomically).
                outcome = self._update(
                    key,
                    "SET tat = tat + :step, expires_at = :expires",
                    "tat >= :now AND tat <= :latest",
                    {":step": {"N": repr(step)}, ":now": {"N": repr(now)},
                     ":latest": {"N": repr(now + limit.burst * limit.interval - step)}, ":expires": expires},
                )  # fmt: skip
            else:
                # An idle (or new) bucket: it is full, start from now.
                outcome = self._update(
                    key,
                    "SET tat = :start, expires_at = :expires",
                    "attribute_not_exists(tat) OR tat < :now",
                    {":start": {"N": repr(now + step)}, ":now": {"N": repr(now)}, ":expires": expires},
                )
            if outcome.applied and outcome.tat is not None:
                self._remember(key, outcome.tat)
                return tokens_left(outcome.tat, now, limit)
            # The row was not as this container thought (or another request raced it): its tat now.
            known = outcome.tat if outcome.row_returned else self._tat(key)
            if attempt >= JITTER_AFTER:
                time.sleep(random.uniform(0, min(MAX_JITTER_SECONDS, 0.001 * 2**attempt)))
        raise DependencyUnavailable(f"rate limiter for {key} is too contended to update")

    def _remember(self, key: str, tat: float) -> None:
        if len(self._remembered) >= MAX_REMEMBERED:
            self._remembered.clear()
        self._remembered[key] = tat

    def _update(self, key: str, expression: str, condition: str, values: dict[str, Any]) -> _Attempt:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"bucket_id": {"S": key}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            returned: dict[str, Any] = dict(error.response)
            if "Item" not in returned:
                return _Attempt(applied=False, tat=None, row_returned=False)
            item = returned["Item"]
            return _Attempt(applied=False, tat=float(item["tat"]["N"]) if "tat" in item else None)
        return _Attempt(applied=True, tat=float(response["Attributes"]["tat"]["N"]))

    def _tat(self, key: str) -> float | None:
        item = self._client.get_item(TableName=self._table, Key={"bucket_id": {"S": key}}, ConsistentRead=True).get(
            "Item"
        )
        return float(item["tat"]["N"]) if item and "tat" in item else None

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
