"""Agent identity and presence logic with a controlled clock."""

from __future__ import annotations

import secrets

import pytest

from lighthouse.agents.logic import AgentDirectoryProjection
from lighthouse.agents.models import HeartbeatRequest, SessionRequest
from lighthouse.agents.service import AgentService, PresencePolicy, SignInLimits
from lighthouse.auth.keys import session_token_key, sign_session_request
from lighthouse.auth.nonces import NonceStore
from lighthouse.auth.tokens import TokenSigner
from lighthouse.clock import FixedClock
from lighthouse.errors import AlreadyExists, NotFound, RateLimited, ReplayDetected, Unauthenticated
from lighthouse.events import EventStore, Projector, ReadModelStore
from lighthouse.ratelimit import Limit, TokenBucketLimiter
from tests.conftest import TEST_MASTER_SECRET, Provisioned


class World:
    def __init__(self, provisioned: Provisioned) -> None:
        dynamodb = provisioned.client("dynamodb")
        self.clock = FixedClock()
        self.events = EventStore.dynamodb(
            dynamodb,
            provisioned.name("LIGHTHOUSE_EVENTS_TABLE"),
            provisioned.name("LIGHTHOUSE_SNAPSHOTS_TABLE"),
            self.clock,
        )
        self.read_models = ReadModelStore(dynamodb, provisioned.name("LIGHTHOUSE_READ_MODELS_TABLE"))
        self.service = AgentService(
            events=self.events,
            read_models=self.read_models,
            nonces=NonceStore(dynamodb, provisioned.name("LIGHTHOUSE_NONCES_TABLE")),
            limiter=TokenBucketLimiter(dynamodb, provisioned.name("LIGHTHOUSE_RATE_LIMITS_TABLE"), self.clock),
            signer=TokenSigner(session_token_key(TEST_MASTER_SECRET)),
            master_secret=TEST_MASTER_SECRET,
            clock=self.clock,
            presence=PresencePolicy(heartbeat_interval_seconds=30),
            sign_in=SignInLimits(
                sessions=Limit(per_minute=6, burst=3),
                failures_per_source=Limit(per_minute=6, burst=5),
                failures_per_agent=Limit(per_minute=60, burst=8),
            ),
        )
        self.projector = Projector(self.events, self.read_models, [AgentDirectoryProjection()])

    def project(self, agent_id: str) -> None:
        self.projector.project(self.events.load(f"agent#{agent_id}"))

    def session_request(self, agent_id: str, secret: str, skew: int = 0, nonce: str | None = None) -> SessionRequest:
        timestamp = int(self.clock.now()) + skew
        nonce = nonce or secrets.token_hex(16)
        return SessionRequest(
            agent_id=agent_id,
            timestamp=timestamp,
            nonce=nonce,
            signature=sign_session_request(secret, agent_id, timestamp, nonce),
        )


@pytest.fixture
def world(provisioned: Provisioned) -> World:
    return World(provisioned)


def test_registering_twice_is_refused(world: World) -> None:
    world.service.register("alice", "agent")

    with pytest.raises(AlreadyExists):
        world.service.register("alice", "admin")
    assert len(world.events.load("agent#alice")) == 1


def test_a_signed_session_request_yields_a_token_that_authenticates(world: World) -> None:
    secret = world.service.register("alice", "expert").secret

    session = world.service.create_session(world.session_request("alice", secret))
    principal = world.service.authenticate(f"Bearer {session.token}")

    assert (principal.agent_id, principal.role) == ("alice", "expert")
    assert session.expires_at == int(world.clock.now()) + 3600


def test_a_token_expires_after_its_lifetime(world: World) -> None:
    secret = world.service.register("alice", "agent").secret
    token = world.service.create_session(world.session_request("alice", secret)).token

    world.clock.advance(3600)

    with pytest.raises(Unauthenticated, match="expired"):
        world.service.authenticate(f"Bearer {token}")


@pytest.mark.parametrize("skew", [301, -301, 10_000])
def test_a_timestamp_more_than_300_seconds_off_is_rejected(world: World, skew: int) -> None:
    secret = world.service.register("alice", "agent").secret

    with pytest.raises(Unauthenticated, match="300 s"):
        world.service.create_session(world.session_request("alice", secret, skew=skew))


def test_a_timestamp_299_seconds_off_is_accepted(world: World) -> None:
    secret = world.service.register("alice", "agent").secret

    assert world.service.create_session(world.session_request("alice", secret, skew=-299)).token


def test_a_replayed_nonce_is_rejected(world: World) -> None:
    secret = world.service.register("alice", "agent").secret
    request = world.session_request("alice", secret)
    world.service.create_session(request)

    with pytest.raises(ReplayDetected):
        world.service.create_session(request)


def test_a_wrong_signature_and_an_unknown_agent_get_the_same_answer(world: World) -> None:
    world.service.register("alice", "agent")

    with pytest.raises(Unauthenticated) as wrong:
        world.service.create_session(world.session_request("alice", "0" * 64))
    with pytest.raises(Unauthenticated) as unknown:
        world.service.create_session(world.session_request("mallory", "0" * 64))

    assert wrong.value.message == unknown.value.message


def test_a_failed_signature_does_not_burn_the_nonce(world: World) -> None:
    secret = world.service.register("alice", "agent").secret
    nonce = secrets.token_hex(16)
    with pytest.raises(Unauthenticated):
        world.service.create_session(world.session_request("alice", "f" * 64, nonce=nonce))

    assert world.service.create_session(world.session_request("alice", secret, nonce=nonce)).token


def test_session_creation_is_rate_limited_per_agent(world: World) -> None:
    secret = world.service.register("alice", "agent").secret
    for _ in range(3):
        world.service.create_session(world.session_request("alice", secret))

    with pytest.raises(RateLimited) as limited:
        world.service.create_session(world.session_request("alice", secret))
    assert limited.value.retry_after_seconds == 10


def test_bad_signatures_cannot_lock_the_real_agent_out(world: World) -> None:
    # GIVEN forty sign-ins for alice with a wrong signature, from an attacker's address
    secret = world.service.register("alice", "agent").secret
    answers = []
    for _ in range(40):
        try:
            world.service.create_session(world.session_request("alice", "0" * 64), source="203.0.113.9")
        except (Unauthenticated, RateLimited) as error:
            answers.append(type(error).__name__)
    # WHEN alice signs in with her secret, from her own address and from the attacker's
    own = world.service.create_session(world.session_request("alice", secret), source="198.51.100.7")
    shared = world.service.create_session(world.session_request("alice", secret), source="203.0.113.9")
    # THEN the attacker was slowed down (429 after its failure budget) and alice was not
    assert answers[:5] == ["Unauthenticated"] * 5
    assert "RateLimited" in answers
    assert own.token
    assert shared.token


def test_failures_from_many_sources_are_capped_per_agent_but_valid_sign_ins_pass(world: World) -> None:
    secret = world.service.register("alice", "agent").secret
    outcomes = set()
    for attempt in range(12):
        try:
            world.service.create_session(world.session_request("alice", "0" * 64), source=f"192.0.2.{attempt}")
        except (Unauthenticated, RateLimited) as error:
            outcomes.add(type(error).__name__)

    assert outcomes == {"Unauthenticated", "RateLimited"}
    assert world.service.create_session(world.session_request("alice", secret), source="192.0.2.200").token


def test_heartbeats_bring_an_agent_online_and_three_missed_intervals_take_it_offline(world: World) -> None:
    secret = world.service.register("alice", "agent", {"team": "blue"}).secret
    principal = world.service.authenticate(
        "Bearer " + world.service.create_session(world.session_request("alice", secret)).token
    )
    world.project("alice")
    assert world.service.get("alice").presence == "offline"

    world.service.heartbeat(principal, HeartbeatRequest(status="busy", metadata={"task": "t1"}))
    world.project("alice")
    view = world.service.get("alice")
    assert (view.presence, view.status, view.metadata) == ("online", "busy", {"team": "blue", "task": "t1"})

    world.clock.advance(89)
    assert world.service.sweep_offline() == []
    world.clock.advance(2)
    assert world.service.sweep_offline() == ["alice"]
    world.project("alice")

    assert world.service.get("alice").presence == "offline"
    last_will = world.events.load("agent#alice")[-1]
    assert last_will.type == "AGENT_WENT_OFFLINE"
    assert "missed 3 heartbeats" in last_will.event.reason  # type: ignore[attr-defined]
    # A second sweep finds nothing new to do.
    assert world.service.sweep_offline() == []


def test_the_sweep_trusts_the_stream_over_a_lagging_read_model(world: World) -> None:
    secret = world.service.register("alice", "agent").secret
    principal = world.service.authenticate(
        "Bearer " + world.service.create_session(world.session_request("alice", secret)).token
    )
    world.service.heartbeat(principal, HeartbeatRequest())
    world.project("alice")
    world.clock.advance(100)
    world.service.heartbeat(principal, HeartbeatRequest())  # not yet projected

    assert world.service.sweep_offline() == []


def test_unknown_agents_are_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.service.get("nobody")
