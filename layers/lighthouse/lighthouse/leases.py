"""Caps on open long-polls: a few per agent and a bounded number in all.

A long-poll holds a request (on AWS, a Lambda instance) for up to 20 s. Without a cap, one agent
could hold hundreds and starve the rest. Each open wait is a lease: an entry in a DynamoDB string
set, added only while the set is smaller than the cap (one conditional update) and removed when the
wait ends. Each entry carries its own expiry, so a lease that a crashed instance never released is
pruned the next time the set is full, and the item's TTL removes the rest.

The global cap is kept in `SHARDS` items, each holding an equal part of it, so that no single item
takes every agent's writes: a hot item serializes the emulator and, on DynamoDB, throttles its
partition. A wait goes to the shard its agent's id hashes to, or, when that one is full, to the next
with room: ids do not hash evenly (200 agents over 8 shards of 32 put more than 32 in some), and a
wait must be refused only when the cap itself is reached.

A lease is taken only when a long-poll is about to block (`lighthouse.notify.admit`): a wait that
can answer at once costs nothing.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from lighthouse.clock import Clock
from lighthouse.errors import RateLimited

# A lease outlives its wait by this much before another request may prune it.
LEASE_GRACE_SECONDS = 30
SHARDS = 8


@dataclass(frozen=True)
class WaitCaps:
    per_agent: int = 4
    total: int = 256


@dataclass
class Lease:
    """Waits held for one request; `release` gives them back (safe to call twice)."""

    owner: WaitLeases
    entry: str
    keys: list[str] = field(default_factory=list)

    def release(self) -> None:
        keys, self.keys = self.keys, []
        for key in keys:
            self.owner.remove(key, [self.entry])


class WaitLeases:
    def __init__(self, client: Any, table: str, clock: Clock, caps: WaitCaps | None = None) -> None:
        self._client = client
        self._table = table
        self._clock = clock
        self._caps = caps or WaitCaps()

    def acquire(self, agent_id: str, seconds: float) -> Lease:
        """A lease under the agent's cap and the global cap, or RateLimited (429)."""
        expiry = int(self._clock.now() + seconds + LEASE_GRACE_SECONDS)
        lease = Lease(self, f"{expiry}:{uuid.uuid4().hex}")
        home = int(hashlib.sha256(agent_id.encode()).hexdigest(), 16) % SHARDS
        if not self._take(f"waits#{agent_id}", lease.entry, self._caps.per_agent):
            raise RateLimited(self._refusal(f"agent {agent_id} has {self._caps.per_agent} open waits"), 1)
        lease.keys.append(f"waits#{agent_id}")
        per_shard = math.ceil(self._caps.total / SHARDS)
        for offset in range(SHARDS):
            key = f"waits#*#{(home + offset) % SHARDS}"
            if self._take(key, lease.entry, per_shard):
                lease.keys.append(key)
                return lease
        lease.release()
        raise RateLimited(self._refusal(f"{self._caps.total} waits are open"), 1)

    @staticmethod
    def _refusal(reason: str) -> str:
        return f"too many long-polls: {reason}; retry when one ends, or poll without wait"

    def _take(self, key: str, entry: str, cap: int) -> bool:
        for attempt in range(2):
            if self._add(key, entry, cap):
                return True
            if attempt == 0 and not self._prune(key):
                return False
        return False

    def _add(self, key: str, entry: str, cap: int) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"bucket_id": {"S": key}},
                UpdateExpression="ADD leases :lease SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(leases) OR size(leases) < :cap",
                ExpressionAttributeValues={
                    ":lease": {"SS": [entry]},
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
        entries = item.get("Item", {}).get("leases", {}).get("SS", [])
        now = self._clock.now()
        stale = [entry for entry in entries if int(entry.split(":", 1)[0]) < now]
        if stale:
            self.remove(key, stale)
        return bool(stale)

    def remove(self, key: str, entries: list[str]) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={"bucket_id": {"S": key}},
            UpdateExpression="DELETE leases :leases",
            ExpressionAttributeValues={":leases": {"SS": entries}},
        )

    def open_waits(self, agent_id: str | None = None) -> int:
        """Open waits of one agent, or of everyone."""
        keys = [f"waits#{agent_id}"] if agent_id else [f"waits#*#{shard}" for shard in range(SHARDS)]
        return sum(
            len(
                self._client.get_item(TableName=self._table, Key={"bucket_id": {"S": key}}, ConsistentRead=True)
                .get("Item", {})
                .get("leases", {})
                .get("SS", [])
            )
            for key in keys
        )
