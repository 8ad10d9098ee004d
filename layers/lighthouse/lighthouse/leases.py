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
        """Hold a lease for the duration of a wait, or raise RateLimited (429) over either cap.

        Both caps are taken in one transaction and given back in another: two calls per wait.
        """
        expiry = int(self._clock.now() + seconds + LEASE_GRACE_SECONDS)
        lease = f"{expiry}:{uuid.uuid4().hex}"
        keys = {f"waits#{agent_id}": self._caps.per_agent, GLOBAL_KEY: self._caps.total}
        for attempt in range(2):
            refused = self._add(keys, lease)
            if refused is None:
                break
            if attempt == 1 or not self._prune(refused):
                what = f"agent {agent_id} has {keys[refused]}" if refused != GLOBAL_KEY else f"{keys[refused]} are"
                raise RateLimited(
                    f"too many long-polls: {what} open waits; retry when one ends, or poll without wait", 1
                )
        try:
            yield
        finally:
            self._remove(list(keys), [lease])

    def _add(self, caps: dict[str, int], lease: str) -> str | None:
        """Add the lease under every key whose set is below its cap; the key that refused, or None."""
        expires = {"N": str(int(self._clock.now()) + 3600)}
        actions = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"bucket_id": {"S": key}},
                    "UpdateExpression": "ADD leases :lease SET expires_at = :expires",
                    "ConditionExpression": "attribute_not_exists(leases) OR size(leases) < :cap",
                    "ExpressionAttributeValues": {
                        ":lease": {"SS": [lease]},
                        ":cap": {"N": str(cap)},
                        ":expires": expires,
                    },
                }
            }
            for key, cap in caps.items()
        ]
        try:
            self._client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons", [])
            for key, reason in zip(caps, reasons, strict=False):
                if reason.get("Code") == "ConditionalCheckFailed":
                    return key
            raise
        return None

    def _prune(self, key: str) -> bool:
        """Drop leases whose waits must have ended; True if any were dropped."""
        item = self._client.get_item(TableName=self._table, Key={"bucket_id": {"S": key}}, ConsistentRead=True)
        leases = item.get("Item", {}).get("leases", {}).get("SS", [])
        now = self._clock.now()
        stale = [lease for lease in leases if int(lease.split(":", 1)[0]) < now]
        if stale:
            self._remove([key], stale)
        return bool(stale)

    def _remove(self, keys: list[str], leases: list[str]) -> None:
        self._client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"bucket_id": {"S": key}},
                        "UpdateExpression": "DELETE leases :leases",
                        "ExpressionAttributeValues": {":leases": {"SS": leases}},
                    }
                }
                for key in keys
            ]
        )

    def open_waits(self, agent_id: str | None = None) -> int:
        key = f"waits#{agent_id}" if agent_id else GLOBAL_KEY
        item = self._client.get_item(TableName=self._table, Key={"bucket_id": {"S": key}}, ConsistentRead=True)
        return len(item.get("Item", {}).get("leases", {}).get("SS", []))
