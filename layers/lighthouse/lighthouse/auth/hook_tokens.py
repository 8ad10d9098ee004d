"""Hook tokens: long-lived credentials for Claude Code's hook headers, revocable before they expire.

A hook token is a signed bearer token (its own HMAC key, so a session token is never accepted in
its place). Each is recorded when issued (`HOOK_TOKEN_ISSUED` in stream `hook-token#<token id>`)
and a revocation is an event in the same stream, so every check reads one short stream: the
signature proves who issued it, the stream says whether it still counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from lighthouse.auth.tokens import Principal, TokenSigner
from lighthouse.clock import Clock
from lighthouse.errors import Conflict, Forbidden, NotFound, Unauthenticated
from lighthouse.events import EventStore, StoredEvent
from lighthouse.events.command import execute
from lighthouse.events.types import Event


def stream_id(token_id: str) -> str:
    return f"hook-token#{token_id}"


class HookTokenIssued(Event):
    TYPE: ClassVar[str] = "HOOK_TOKEN_ISSUED"

    token_id: str
    agent_id: str
    expires_at: int


class HookTokenRevoked(Event):
    TYPE: ClassVar[str] = "HOOK_TOKEN_REVOKED"

    by: str
    at: float


class HookToken(BaseModel):
    agent_id: str
    token_id: str
    hook_token: str
    expires_at: int


class RevokedHookToken(BaseModel):
    token_id: str
    agent_id: str
    revoked: bool = True
    revoked_by: str


class HookTokenState(BaseModel):
    model_config = ConfigDict(frozen=True)

    owner: str = ""
    revoked: bool = False


@dataclass(frozen=True)
class Revoke:
    by: Principal
    at: float


class HookTokenFold:
    name = "hook-token-v1"
    snapshots = False  # two events at most

    def initial(self) -> HookTokenState:
        return HookTokenState()

    def evolve(self, state: HookTokenState, stored: StoredEvent) -> HookTokenState:
        if isinstance(stored.event, HookTokenIssued):
            return HookTokenState(owner=stored.event.agent_id)
        if isinstance(stored.event, HookTokenRevoked):
            return state.model_copy(update={"revoked": True})
        return state

    def to_snapshot(self, state: HookTokenState) -> dict[str, Any]:
        return state.model_dump()

    def from_snapshot(self, data: dict[str, Any]) -> HookTokenState:
        return HookTokenState.model_validate(data)


FOLD = HookTokenFold()


def revoke(state: HookTokenState, command: Revoke) -> list[Event]:
    """Its owner or an admin revokes a token, once."""
    if not state.owner:
        raise NotFound("no such hook token")
    if command.by.agent_id != state.owner and command.by.role != "admin":
        raise Forbidden("only the agent a hook token was issued to (or an admin) may revoke it")
    if state.revoked:
        raise Conflict("this hook token is already revoked")
    return [HookTokenRevoked(by=command.by.agent_id, at=command.at)]


class HookTokens:
    def __init__(self, signer: TokenSigner, events: EventStore, clock: Clock, ttl_seconds: int) -> None:
        self._signer = signer
        self._events = events
        self._clock = clock
        self._ttl = ttl_seconds

    def issue(self, principal: Principal) -> HookToken:
        token, issued = self._signer.issue(principal.agent_id, principal.role, self._clock.now(), self._ttl)
        recorded = HookTokenIssued(token_id=issued.token_id, agent_id=issued.agent_id, expires_at=issued.expires_at)
        self._events.append(stream_id(issued.token_id), [recorded], expected_version=0)
        return HookToken(
            agent_id=issued.agent_id, token_id=issued.token_id, hook_token=token, expires_at=issued.expires_at
        )

    def revoke(self, principal: Principal, token_id: str) -> RevokedHookToken:
        """Every hook call with a revoked token is denied from then on."""
        outcome = execute(self._events, stream_id(token_id), FOLD, revoke, Revoke(principal, self._clock.now()))
        return RevokedHookToken(token_id=token_id, agent_id=outcome.state.owner, revoked_by=principal.agent_id)

    def verify_header(self, authorization: str | None) -> Principal:
        principal = self._signer.verify_header(authorization, self._clock.now())
        state, _ = self._events.load_state(stream_id(principal.token_id), FOLD)
        if state.revoked:
            raise Unauthenticated("this hook token was revoked; issue a new one (lighthouse hook token)")
        return principal


def hook_authorization(headers: Mapping[str, str]) -> str:
    """The hook token a Claude Code hook sent, as an Authorization value: `Authorization: Bearer` or
    `X-Lighthouse-Hook-Token` (an http hook's headers are whatever its settings name)."""
    token = headers.get("x-lighthouse-hook-token")
    authorization = f"Bearer {token}" if token else headers.get("authorization")
    if not authorization:
        raise Unauthenticated("no hook token: send 'Authorization: Bearer <hook token>' or X-Lighthouse-Hook-Token")
    return authorization
