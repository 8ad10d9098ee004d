"""Hook tokens: long-lived credentials for Claude Code's hook headers, revocable before they expire.

A hook token is a signed bearer token (its own HMAC key, so a session token is never accepted in
its place). Each is recorded when issued (`HOOK_TOKEN_ISSUED` in stream `hook-token#<token id>`)
and a revocation is an event in the same stream, so every check reads one short stream: the
signature proves who issued it, the stream says whether it still counts.
"""

from __future__ import annotations

from pydantic import BaseModel

from lighthouse.auth.tokens import Principal, TokenSigner
from lighthouse.clock import Clock
from lighthouse.errors import ConcurrencyError, Conflict, Forbidden, NotFound, Unauthenticated
from lighthouse.events import EventStore, NewEvent

HOOK_TOKEN_ISSUED = "HOOK_TOKEN_ISSUED"  # noqa: S105 - an event type, not a secret
HOOK_TOKEN_REVOKED = "HOOK_TOKEN_REVOKED"  # noqa: S105 - an event type, not a secret


def stream_id(token_id: str) -> str:
    return f"hook-token#{token_id}"


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


class HookTokens:
    def __init__(self, signer: TokenSigner, events: EventStore, clock: Clock, ttl_seconds: int) -> None:
        self._signer = signer
        self._events = events
        self._clock = clock
        self._ttl = ttl_seconds

    def issue(self, principal: Principal) -> HookToken:
        token, issued = self._signer.issue(principal.agent_id, principal.role, self._clock.now(), self._ttl)
        self._events.append(
            stream_id(issued.token_id),
            [
                NewEvent(
                    HOOK_TOKEN_ISSUED,
                    {"token_id": issued.token_id, "agent_id": issued.agent_id, "expires_at": issued.expires_at},
                )
            ],
            expected_version=0,
        )
        return HookToken(
            agent_id=issued.agent_id, token_id=issued.token_id, hook_token=token, expires_at=issued.expires_at
        )

    def revoke(self, principal: Principal, token_id: str) -> RevokedHookToken:
        """Its owner or an admin revokes a token; every hook call with it is denied from then on."""
        events = self._events.load(stream_id(token_id))
        if not events:
            raise NotFound(f"no hook token {token_id!r}")
        owner = str(events[0].data["agent_id"])
        if principal.agent_id != owner and principal.role != "admin":
            raise Forbidden("only the agent a hook token was issued to (or an admin) may revoke it")
        if any(event.type == HOOK_TOKEN_REVOKED for event in events):
            raise Conflict(f"hook token {token_id} is already revoked")
        try:
            self._events.append(
                stream_id(token_id),
                [NewEvent(HOOK_TOKEN_REVOKED, {"by": principal.agent_id, "at": self._clock.now()})],
                expected_version=events[-1].version,
            )
        except ConcurrencyError as error:
            raise Conflict(f"hook token {token_id} is already revoked") from error
        return RevokedHookToken(token_id=token_id, agent_id=owner, revoked_by=principal.agent_id)

    def verify_header(self, authorization: str | None) -> Principal:
        principal = self._signer.verify_header(authorization, self._clock.now())
        events = self._events.load(stream_id(principal.token_id))
        if any(event.type == HOOK_TOKEN_REVOKED for event in events):
            raise Unauthenticated("this hook token was revoked; issue a new one (lighthouse hook token)")
        return principal
