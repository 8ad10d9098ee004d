"""Agent identity and presence as a service: authorise, build the command, run it, return a view.

Decisions are in `agents.logic`; storage is injected. Nothing here reads the environment.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from lighthouse.agents import logic
from lighthouse.agents.models import (
    DIRECTORY,
    OPERATOR_ID,
    AgentPage,
    AgentRegistration,
    AgentState,
    AgentView,
    Beat,
    ChangeProjects,
    HeartbeatRequest,
    HeartbeatResponse,
    MarkOffline,
    Register,
    Role,
    SessionRequest,
    SessionResponse,
)
from lighthouse.agents.store import stream_id
from lighthouse.auth.keys import agent_secret, operator_secret, sign_session_request
from lighthouse.auth.nonces import NonceStore
from lighthouse.auth.tokens import Principal, TokenSigner
from lighthouse.clock import Clock
from lighthouse.errors import AlreadyExists, NotFound, Unauthenticated
from lighthouse.events import EventStore, ReadModelStore
from lighthouse.events.command import execute
from lighthouse.lazy import Lazy
from lighthouse.paging import cursor_string, encode_cursor
from lighthouse.ratelimit import Limit, TokenBucketLimiter

OFFLINE_AFTER_MISSED_HEARTBEATS = 3
# The operator signs in like an agent, with a secret derived from the master secret; it has no stream.
OPERATOR = AgentState(agent_id=OPERATOR_ID, role="admin")


@dataclass(frozen=True)
class PresencePolicy:
    heartbeat_interval_seconds: int

    @property
    def offline_after_seconds(self) -> int:
        return self.heartbeat_interval_seconds * OFFLINE_AFTER_MISSED_HEARTBEATS


@dataclass(frozen=True)
class SignInLimits:
    """Sessions for an agent that proves its secret, and failed attempts, per source and per agent.

    Failures are charged only after a signature fails to verify, and only to failure budgets: a
    caller without the secret can make its own attempts slow, never the real agent's sign-in.
    """

    sessions: Limit = field(default_factory=lambda: Limit(per_minute=30, burst=10))
    failures_per_source: Limit = field(default_factory=lambda: Limit(per_minute=20, burst=10))
    failures_per_agent: Limit = field(default_factory=lambda: Limit(per_minute=60, burst=20))


class AgentService:
    def __init__(
        self,
        *,
        events: EventStore,
        read_models: ReadModelStore,
        nonces: NonceStore,
        limiter: TokenBucketLimiter,
        signer: TokenSigner,
        master_secret: str | Lazy[str],
        clock: Clock,
        presence: PresencePolicy,
        token_ttl_seconds: int = 3600,
        clock_skew_seconds: int = 300,
        sign_in: SignInLimits | None = None,
        heartbeat_limit: Limit | None = None,
    ) -> None:
        self._events = events
        self._read_models = read_models
        self._nonces = nonces
        self._limiter = limiter
        self._signer = signer
        self._master_secret = master_secret if isinstance(master_secret, Lazy) else Lazy(master_secret)
        self._clock = clock
        self._presence = presence
        self._token_ttl = token_ttl_seconds
        self._skew = clock_skew_seconds
        self._sign_in = sign_in or SignInLimits()
        self._heartbeat_limit = heartbeat_limit or Limit(per_minute=120, burst=10)

    def _state(self, agent_id: str) -> tuple[AgentState, int]:
        return self._events.load_state(stream_id(agent_id), logic.FOLD)

    # registration ---------------------------------------------------------------------------

    def register(
        self,
        agent_id: str,
        role: Role,
        metadata: dict[str, Any] | None = None,
        projects: list[str] | None = None,
    ) -> AgentRegistration:
        if agent_id == OPERATOR_ID:
            raise AlreadyExists(f"{OPERATOR_ID!r} is the built-in operator's id and cannot be registered")
        command = Register(agent_id, role, secrets.token_hex(16), self._clock.now(), metadata or {}, projects or [])
        execute(self._events, stream_id(agent_id), logic.FOLD, logic.register, command)
        secret = agent_secret(self._master_secret.get(), agent_id, command.salt)
        return AgentRegistration(agent_id=agent_id, role=role, secret=secret)

    # sessions -------------------------------------------------------------------------------

    def create_session(self, request: SessionRequest, source: str = "unknown") -> SessionResponse:
        """A bearer token for an agent that proves its secret; `source` is the caller's address."""
        now = self._clock.now()
        if abs(now - request.timestamp) > self._skew:
            raise Unauthenticated(
                f"timestamp is more than {self._skew} s away from server time; check the agent's clock",
                {"server_time": int(now)},
            )
        state = OPERATOR if request.agent_id == OPERATOR_ID else self._state(request.agent_id)[0]
        if not self._signed_by(state, request):
            # Charged to failure budgets only; over them the answer is 429 instead of 401.
            self._limiter.consume(f"signin-failures#source#{source}", self._sign_in.failures_per_source)
            self._limiter.consume(f"signin-failures#agent#{request.agent_id}", self._sign_in.failures_per_agent)
            # The same message for an unknown agent and a bad signature: ids are not enumerable.
            raise Unauthenticated("signature does not verify for this agent")
        # Only after the signature checks out, so nobody can burn another agent's nonces or budget.
        self._nonces.remember(f"session#{request.agent_id}", request.nonce.lower(), now, 2 * self._skew)
        self._limiter.consume(f"sessions#{request.agent_id}", self._sign_in.sessions)
        token, principal = self._signer.issue(state.agent_id, state.role, now, self._token_ttl)
        return SessionResponse(
            token=token,
            agent_id=principal.agent_id,
            role=state.role,  # type: ignore[arg-type]
            expires_at=principal.expires_at,
        )

    def _signed_by(self, state: AgentState, request: SessionRequest) -> bool:
        if not state.exists:
            return False
        master = self._master_secret.get()
        secret = operator_secret(master) if state is OPERATOR else agent_secret(master, state.agent_id, state.salt)
        expected = sign_session_request(secret, request.agent_id, request.timestamp, request.nonce)
        return hmac.compare_digest(expected, request.signature)

    def authenticate(self, authorization: str | None) -> Principal:
        return self._signer.verify_header(authorization, self._clock.now())

    # presence -------------------------------------------------------------------------------

    def heartbeat(self, principal: Principal, request: HeartbeatRequest) -> HeartbeatResponse:
        self._limiter.consume(f"heartbeats#{principal.agent_id}", self._heartbeat_limit)
        now = self._clock.now()
        command = Beat(now, request.status, request.metadata)
        execute(self._events, stream_id(principal.agent_id), logic.FOLD, logic.beat, command)
        return HeartbeatResponse(
            agent_id=principal.agent_id,
            last_seen=now,
            next_heartbeat_before=now + self._presence.heartbeat_interval_seconds,
        )

    def record_beat(self, agent_id: str, at: float, status: str) -> None:
        """A heartbeat that arrived another way (the agent's MQTT status), already authenticated."""
        execute(self._events, stream_id(agent_id), logic.FOLD, logic.beat, Beat(at, status, {}))

    def record_offline(self, agent_id: str, at: float, reason: str) -> None:
        """The agent said (or its MQTT will said) it is gone: offline now, unless heard from since."""
        execute(
            self._events,
            stream_id(agent_id),
            logic.FOLD,
            logic.mark_offline,
            MarkOffline(at=at, cutoff=at, reason=reason),
        )

    def sweep_offline(self) -> list[str]:
        """Mark offline (the agent's last will) every online agent silent for 3 intervals."""
        now = self._clock.now()
        command = MarkOffline(
            at=now,
            cutoff=now - self._presence.offline_after_seconds,
            reason=f"missed {OFFLINE_AFTER_MISSED_HEARTBEATS} heartbeats ({self._presence.offline_after_seconds} s)",
        )
        marked: list[str] = []
        next_token: str | None = None
        while True:
            documents, next_token = self._read_models.list(DIRECTORY, limit=200, start_key=next_token)
            for document in documents:
                body = document.body or {}
                if body.get("presence") != "online" or (body.get("last_seen") or 0) >= command.cutoff:
                    continue
                # The read model may lag; the stream decides (a heartbeat that won the race keeps it online).
                outcome = execute(self._events, stream_id(document.key), logic.FOLD, logic.mark_offline, command)
                if outcome.appended:
                    marked.append(document.key)
            if not next_token:
                return marked

    def set_projects(self, principal: Principal, agent_id: str, projects: list[str]) -> AgentView:
        """Replace an agent's project memberships (admins only; enforced by the route)."""
        command = ChangeProjects(projects, principal.agent_id, self._clock.now())
        outcome = execute(self._events, stream_id(agent_id), logic.FOLD, logic.change_projects, command)
        return _view(outcome.state)

    def projects_of(self, agent_id: str) -> list[str]:
        """The agent's projects, from its stream (the truth), not the read model that may lag."""
        state, _ = self._state(agent_id)
        return list(state.projects) if state.exists else []

    def exists(self, agent_id: str) -> bool:
        return self._events.current_version(stream_id(agent_id)) > 0

    # directory ------------------------------------------------------------------------------

    def get(self, agent_id: str) -> AgentView:
        document = self._read_models.get(DIRECTORY, agent_id)
        if document.body is None:
            raise NotFound(f"agent {agent_id!r} not found")
        return AgentView.model_validate(document.body)

    def list(self, limit: int, next_token: str | None) -> AgentPage:
        """A page of agents; `next_token` is the opaque token of the previous page."""
        documents, last = self._read_models.list(DIRECTORY, limit=limit, start_key=cursor_string(next_token))
        return AgentPage(
            agents=[AgentView.model_validate(d.body) for d in documents],
            next_token=encode_cursor(last) if last else None,
        )


def _view(state: AgentState) -> AgentView:
    return AgentView(
        agent_id=state.agent_id,
        role=state.role,  # type: ignore[arg-type]
        presence="online" if state.online else "offline",
        status=state.status,
        last_seen=state.last_seen,
        registered_at=state.registered_at,
        metadata=state.metadata,
        projects=state.projects,
    )
