"""The security probes' platform: one local cloud per module, spoken to over real HTTP, with helpers
that tell whether a refused request stored anything and whether the platform still answers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.security.platform import Platform, running_platform

# The rate-limit table is accounting, not state: a refused sign-in is charged to a failure budget
# on purpose. Every other table, queue and bucket must be unchanged by a refused request.
ACCOUNTING_TABLES = ("RateLimitsTable",)
HEALTH_BUDGET_SECONDS = 1.0


@dataclass
class Probe:
    platform: Platform

    @property
    def url(self) -> str:
        return self.platform.api_url

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        role: str | None = "agent",
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> requests.Response:
        sent = {"Content-Type": "application/json", **(headers or {})}
        credential = token if token is not None else (self.platform.tokens[role] if role else None)
        if credential:
            sent["Authorization"] = f"Bearer {credential}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        return requests.request(method, f"{self.url}{path}", data=data, headers=sent, timeout=timeout)

    def stored(self) -> dict[str, Any]:
        """Item counts of every table but the accounting one, queue depths and bucket objects."""
        dynamodb = self.platform.cloud.client("dynamodb")
        counts: dict[str, Any] = {}
        for name in dynamodb.list_tables()["TableNames"]:
            if name.endswith(ACCOUNTING_TABLES):
                continue
            counts[name] = sum(
                page["Count"] for page in dynamodb.get_paginator("scan").paginate(TableName=name, Select="COUNT")
            )
        sqs = self.platform.cloud.client("sqs")
        for url in sqs.list_queues().get("QueueUrls", []):
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            counts[url.rsplit("/", 1)[-1]] = int(attributes["ApproximateNumberOfMessages"]) + int(
                attributes["ApproximateNumberOfMessagesNotVisible"]
            )
        s3 = self.platform.cloud.client("s3")
        for bucket in s3.list_buckets()["Buckets"]:
            counts[f"s3:{bucket['Name']}"] = s3.list_objects_v2(Bucket=bucket["Name"]).get("KeyCount", 0)
        return counts

    def settled(self, timeout: float = 15.0) -> dict[str, Any]:
        """`stored()` once background work (stream consumers, executions reaching their waits) is done."""
        self.platform.cloud.wait_for_projection()
        deadline = time.monotonic() + timeout
        previous = self.stored()
        while time.monotonic() < deadline:
            time.sleep(0.15)
            current = self.stored()
            if current == previous:
                return current
            previous = current
        raise AssertionError("stored state kept changing")

    def healthy_within(self, seconds: float = HEALTH_BUDGET_SECONDS) -> float:
        started = time.perf_counter()
        response = requests.get(f"{self.url}/health", timeout=seconds + 5)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.text
        assert elapsed <= seconds, f"/health took {elapsed:.2f} s"
        return elapsed


@pytest.fixture(scope="module")
def probe() -> Iterator[Probe]:
    with running_platform() as platform:
        yield Probe(platform)


def refused(probe: Probe, response: requests.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert the status (and error code), that the platform answers, and return the error body."""
    assert response.status_code == status, f"{response.status_code} {response.text[:500]}"
    body: dict[str, Any] = response.json()
    if code is not None:
        assert body["error"]["code"] == code, body
    probe.healthy_within()
    return body
