"""Token bucket in DynamoDB: refill arithmetic, 429 details, and no overspending under contention."""

from __future__ import annotations

import threading

import pytest

from lighthouse.clock import FixedClock
from lighthouse.errors import RateLimited
from lighthouse.ratelimit import Limit, TokenBucketLimiter, refill, retry_after
from tests.conftest import Provisioned


def test_refill_is_capped_at_the_burst() -> None:
    limit = Limit(per_minute=60, burst=3)
    assert refill(0.0, 1.5, limit) == 1.5
    assert refill(2.0, 100.0, limit) == 3.0
    assert refill(1.0, -5.0, limit) == 1.0


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    assert retry_after(0.0, 1.0, Limit(per_minute=10, burst=3)) == 6
    assert retry_after(0.99, 1.0, Limit(per_minute=600, burst=3)) == 1


@pytest.fixture
def limiter(provisioned: Provisioned) -> tuple[TokenBucketLimiter, FixedClock]:
    clock = FixedClock()
    return TokenBucketLimiter(
        provisioned.client("dynamodb"), provisioned.name("LIGHTHOUSE_RATE_LIMITS_TABLE"), clock
    ), clock


def test_burst_then_429_then_refill(limiter: tuple[TokenBucketLimiter, FixedClock]) -> None:
    bucket, clock = limiter
    limit = Limit(per_minute=10, burst=3)
    for _ in range(3):
        bucket.consume("creates#alice", limit)

    with pytest.raises(RateLimited) as limited:
        bucket.consume("creates#alice", limit)
    assert limited.value.retry_after_seconds == 6
    assert "10/min, burst 3" in limited.value.message

    clock.advance(6)
    bucket.consume("creates#alice", limit)
    # Buckets are per key.
    bucket.consume("creates#bob", limit)


def test_concurrent_consumers_never_spend_more_than_the_bucket_holds(
    limiter: tuple[TokenBucketLimiter, FixedClock],
) -> None:
    bucket, _ = limiter
    limit = Limit(per_minute=1, burst=5)
    granted: list[int] = []
    refused: list[int] = []

    def consume(i: int) -> None:
        try:
            bucket.consume("hot", limit)
            granted.append(i)
        except RateLimited:
            refused.append(i)

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(granted) == 5
    assert len(refused) == 15
