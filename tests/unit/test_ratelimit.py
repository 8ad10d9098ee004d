"""Token bucket in DynamoDB: refill arithmetic, 429 details, and no overspending under contention."""

from __future__ import annotations

import threading

import pytest

from lighthouse.clock import FixedClock
from lighthouse.errors import RateLimited
from lighthouse.ratelimit import Limit, TokenBucketLimiter, retry_after, tokens_left
from tests.conftest import Provisioned


def test_tokens_left_follows_the_theoretical_arrival_time() -> None:
    limit = Limit(per_minute=60, burst=3)  # one token a second
    assert tokens_left(tat=100.0, now=100.0, limit=limit) == 3.0
    assert tokens_left(tat=102.0, now=100.0, limit=limit) == 1.0
    assert tokens_left(tat=90.0, now=100.0, limit=limit) == 3.0


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    # 10/min, burst 3: interval 6 s; a bucket emptied at t=0 has tat = 18.
    assert retry_after(tat=18.0, now=0.0, limit=Limit(per_minute=10, burst=3)) == 6
    assert retry_after(tat=18.5, now=18.0, limit=Limit(per_minute=600, burst=3)) == 1


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
    assert bucket.consume("creates#alice", limit) == 0.0
    with pytest.raises(RateLimited):
        bucket.consume("creates#alice", limit)
    clock.advance(60)  # long idle: the bucket is full again, not fuller
    assert [bucket.consume("creates#alice", limit) for _ in range(3)] == [2.0, 1.0, 0.0]
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
    assert bucket.rejections("hot") == 15


def _agents_in_one_shard(count: int) -> list[str]:
    import hashlib

    from lighthouse.leases import SHARDS

    def shard(agent_id: str) -> int:
        return int(hashlib.sha256(agent_id.encode()).hexdigest(), 16) % SHARDS

    candidates = (f"agent-{n}" for n in range(100_000))
    return [agent_id for agent_id in candidates if shard(agent_id) == 0][:count]


def test_open_waits_are_refused_only_at_the_global_cap_however_the_agents_hash(provisioned: Provisioned) -> None:
    from lighthouse.leases import WaitCaps, WaitLeases

    leases = WaitLeases(
        provisioned.client("dynamodb"),
        provisioned.name("LIGHTHOUSE_RATE_LIMITS_TABLE"),
        FixedClock(),
        WaitCaps(per_agent=4, total=16),  # two per shard
    )
    agents = _agents_in_one_shard(17)  # all with the same home shard

    held = [leases.acquire(agent_id, 20) for agent_id in agents[:16]]
    with pytest.raises(RateLimited, match="16 waits are open"):
        leases.acquire(agents[16], 20)

    assert leases.open_waits() == 16
    held[0].release()
    leases.acquire(agents[16], 20)
    assert leases.open_waits() == 16
    assert leases.open_waits(agents[0]) == 0
