"""Memory stores (DynamoDB) and context assembly by profile.

Items live in the memory table under `<store>#<scope id>` (the task id, the project, or `global`),
newest last. Assembly takes the `recent_k` newest items of each store in the profile; over the
token budget it keeps the first and the last item and fills the middle by importance, and records
which items it kept and which it dropped.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from lighthouse.pipelines.manifests import ContextProfile, MemoryManifest
from lighthouse.providers import estimate_tokens


@dataclass(frozen=True)
class MemoryItem:
    item_id: str
    store: str
    text: str
    importance: float
    at: float


@dataclass
class AssembledContext:
    items: list[MemoryItem]
    kept: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    tokens: int = 0


class MemoryStore:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def add(self, store_key: str, text: str, importance: float = 0.5, source: str = "") -> str:
        item_id = uuid.uuid4().hex
        now = time.time()
        self._dynamodb.put_item(
            TableName=self._table,
            Item={
                "store_key": {"S": store_key},
                "item_key": {"S": f"{now:020.6f}#{item_id}"},
                "text": {"S": text},
                # DynamoDB numbers stop at 1e-130: a denormal importance would be refused.
                "importance": {"N": repr(round(float(importance), 6))},
                "source": {"S": source},
            },
        )
        return item_id

    def recent(self, store_key: str, limit: int) -> list[MemoryItem]:
        response = self._dynamodb.query(
            TableName=self._table,
            KeyConditionExpression="store_key = :k",
            ExpressionAttributeValues={":k": {"S": store_key}},
            ScanIndexForward=False,
            Limit=limit,
        )
        items = [
            MemoryItem(
                item_id=item["item_key"]["S"].split("#", 1)[1],
                store=store_key.split("#", 1)[0],
                text=item["text"]["S"],
                importance=float(item["importance"]["N"]),
                at=float(item["item_key"]["S"].split("#", 1)[0]),
            )
            for item in response.get("Items", [])
        ]
        return list(reversed(items))


def scope_key(store: str, scope: str, task_id: str, project: str) -> str:
    scope_id = {"task": task_id, "project": project, "global": "global"}[scope]
    return f"{store}#{scope_id}"


def assemble(
    memory: MemoryStore, manifest: MemoryManifest, profile: ContextProfile, task_id: str, project: str
) -> AssembledContext:
    scopes = {s.name: s.scope for s in manifest.stores}
    items: list[MemoryItem] = []
    for store in profile.stores:
        items += memory.recent(scope_key(store, scopes[store], task_id, project), profile.recent_k)
    items.sort(key=lambda item: item.at)
    return fit(items, profile.max_tokens)


def fit(items: list[MemoryItem], max_tokens: int) -> AssembledContext:
    """Keep head and tail; add middle items by importance (then recency) while they fit."""
    cost = {item.item_id: estimate_tokens(item.text) for item in items}
    if sum(cost.values()) <= max_tokens:
        return AssembledContext(items, [i.item_id for i in items], [], sum(cost.values()))
    kept_ids = {item.item_id for item in (items[:1] + items[-1:])}
    kept_ids |= _fill(items[1:-1], cost, max_tokens - sum(cost[i] for i in kept_ids))
    return _assembled(items, kept_ids, cost)


def _assembled(items: list[MemoryItem], kept_ids: set[str], cost: dict[str, int]) -> AssembledContext:
    kept = [item for item in items if item.item_id in kept_ids]
    dropped = [item.item_id for item in items if item.item_id not in kept_ids]
    return AssembledContext(kept, [i.item_id for i in kept], dropped, sum(cost[i.item_id] for i in kept))


def _fill(middle: list[MemoryItem], cost: dict[str, int], budget: int) -> set[str]:
    """The middle items that fit the budget, most important (then most recent) first."""
    chosen = set()
    for item in sorted(middle, key=lambda i: (-i.importance, -i.at)):
        if cost[item.item_id] <= budget:
            chosen.add(item.item_id)
            budget -= cost[item.item_id]
    return chosen
