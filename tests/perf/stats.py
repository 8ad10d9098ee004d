"""Percentiles and result files shared by the benchmarks."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import boto3

from lighthouse.events import StoredEvent
from lighthouse.events.types import Probe

RESULTS = Path(__file__).parent / "results"


def summarize(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 3)

    return {"n": len(ordered), "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99),
            "mean_ms": round(statistics.fmean(ordered), 3)}  # fmt: skip


def write(name: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2))
    return path


def floor_put(dynamodb: Any, table: str) -> float:
    """One conditional PutItem of a new event into the events table, in ms: the floor every
    benchmark compares to (the cheapest durable, conditional write the platform could make)."""
    item = StoredEvent(f"floor-{uuid.uuid4().hex}", 1, Probe(n=1), "e", time.time()).to_item()
    began = time.perf_counter()
    dynamodb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(version)")
    return (time.perf_counter() - began) * 1000


def floor(endpoint_url: str, region: str, table: str, samples: int = 100) -> dict[str, float]:
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name=region)
    return summarize([floor_put(dynamodb, table) for _ in range(samples)])
