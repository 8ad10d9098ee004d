"""Caps on open long-polls: a few per agent and a bounded number in all.

A long-poll holds a request (on AWS, a Lambda instance) for up to 20 s. Without a cap, one agent
could hold hundreds and starve the rest. Each open wait is a lease: an entry in a DynamoDB string
set, added only while the set is smaller than the cap (one conditional update) and removed when the
wait ends. Each entry carries its own expiry, so a lease that a crashed instance never released is
pruned the next time the set is full, and the item's TTL removes the rest.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lighthouse.clock import Clock
from lighthouse.errors import RateLimited

# A lease outlives its wait by this much before another request may prune it.
LEASE_GRACE_SECONDS = 30
GLOBAL_KEY = "waits#*"


@dataclass(frozen=True)
class WaitCaps:
    per_agent: int = 4
    total: int = 256


class WaitLeases:
    def __init__(self, client: Any, table: str, clock: Clock, caps: WaitCaps | None = None) -> None:
        self._client = client
        self._table = table
        self._clock = clock
        self._caps = caps or WaitCaps()

    @contextmanager
    def hold(self, agent_id: str, seconds: float) -> Iterator[None]:
        """Hold a lease for the duration of a wait, or raise RateLimited (429) over either cap."""
        expiry = int(self._clock.now() + seconds + LEASE_GRACE_SECONDS)
        lease = f"{expiry}:{uuid.uuid4().hex}"
        own = f"waits#{agent_id}"
        self._acquire(own, lease, self._caps.per_agent, f"agent {agent_id} has {self._caps.per_agent} open waits")
        try:
            self._acquire(GLOBAL_KEY, lease, self._caps.total, f"the platform has {self._caps.total} open waits")
        except RateLimited:
            self._release(own, lease)
            raise
        try:
            yield
        finally:
            self._release(GLOBAL_KEY, lease)
            self._release(own, lease)

    def _acquire(self, key: str, lease: str, cap: int, refusal: str) -> None:
        for attempt in range(2):
            if self._add(key, lease, cap):
                return
            if attempt == 0 and not self._prune(key):
                break
        raise RateLimited(f"too many long-polls: {refusal}; retry when one ends, or poll without wait", 1)

    def _add(self, key: str, lease: str, cap: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"bucket_id": {"S": key}},
                UpdateExpression="ADD leases :lease SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(leases) OR size(leases) < :cap",
                ExpressionAttributeValues={
                    ":lease": {"SS": [lease]},
                    ":cap": {"N": str(cap)},
                    ":expires": {"N": str(int(self._clock.now()) + 3600)},
                },
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _prune(self, key: str) -> bool:
        """Drop leases whose waits must have ended; True if any were dropped."""
        item = self._client.get_item(TableName=self._table, Key={"bucket_id": {"S": key}}, ConsistentRead=True)
        leases = item.get("Item", {}).get("leases", {}).get("SS", [])
        now = self._clock.now()
        stale = [lease for lease in leases if int(lease.split(":", 1)[0]) < now]
        if stale:
            self._remove(key, stale)
        return bool(stale)

    def _release(self, key: str, lease: str) -> None:
        self._remove(key, [lease])

    def _remove(self, key: str, leases: list[str]) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={"bucket_id": {"S": key}},
            UpdateExpression="DELETE leases :leases",
            ExpressionAttributeValues={":leases": {"SS": leases}},
        )

    def open_waits(self, agent_id: str | None = None) -> int:
        key = f"waits#{agent_id}" if agent_id else GLOBAL_KEY
        item = self._client.get_item(TableName=self._table, Key={"bucket_id": {"S": key}}, ConsistentRead=True)
        return len(item.get("Item", {}).get("leases", {}).get("SS", []))
