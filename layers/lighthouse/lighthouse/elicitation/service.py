"""Elicitation as a service: authorise, build the command, run it, return a view.

Decisions are in `elicitation.logic`; storage, the limiter and Step Functions are injected.
"""

from __future__ import annotations

import math
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from lighthouse.auth.nonces import NonceStore
from lighthouse.auth.tokens import Principal
from lighthouse.clock import Clock
from lighthouse.elicitation import logic, schemas
from lighthouse.elicitation.logic import Inbox
from lighthouse.elicitation.models import (
    MAX_WAIT_SECONDS,
    Answer,
    AnsweredElicitation,
    AnsweredPage,
    Ask,
    CreatedElicitation,
    CreateElicitation,
    ElicitationMetrics,
    ElicitationRequested,
    ElicitationSecurityViolation,
    ElicitationState,
    ElicitationView,
    End,
    Ending,
    PendingElicitation,
    PendingPage,
    RespondResult,
    RespondToElicitation,
    SignedResponse,
)
from lighthouse.elicitation.signing import data_hash, response_key, sign_response, verify_response
from lighthouse.elicitation.store import (
    ElicitationRecords,
    answered_model,
    pending_model,
    stream_id,
    violation_stream,
)
from lighthouse.errors import Conflict, Forbidden, MalformedRequest, NotFound, ValidationFailed
from lighthouse.events import EventStore, ReadModelStore, StoredEvent
from lighthouse.events.command import Outcome, execute
from lighthouse.events.recorders import Action, AlongsideRefused
from lighthouse.lazy import Lazy
from lighthouse.notify import Notifier, admit, model_topic, stream_topic
from lighthouse.notify import notifier as process_notifier
from lighthouse.paging import cursor_string, decode_cursor, encode_cursor
from lighthouse.ratelimit import Limit, TokenBucketLimiter
from lighthouse.waits import TaskTokens

NONCE_KEEP_SECONDS = 2 * 86_400
CREATE_SCOPE = "elicitation-create"
RESPOND_SCOPE = "elicitation-respond"


class ResponseReplayed(Conflict):
    code = "REPLAY_DETECTED"


@dataclass(frozen=True)
class ElicitationLimits:
    creates: Limit = field(default_factory=lambda: Limit(per_minute=10, burst=3))
    responses: Limit = field(default_factory=lambda: Limit(per_minute=20, burst=3))


class ElicitationService:
    def __init__(
        self,
        *,
        events: EventStore,
        read_models: ReadModelStore,
        records: ElicitationRecords,
        nonces: NonceStore,
        limiter: TokenBucketLimiter,
        task_tokens: TaskTokens,
        state_machine_arn: str,
        master_secret: str | Lazy[str],
        clock: Clock,
        limits: ElicitationLimits | None = None,
        notifier: Notifier = process_notifier,
        wait_for_change: Callable[[str, int, float], int] | None = None,
    ) -> None:
        """`wait_for_change(topic, seen, timeout)` blocks a long-poll until a same-process write or the
        timeout; by default the notifier's wait (tests pass one that moves their clock instead)."""
        self._records = records
        self._notifier = notifier
        self._wait = wait_for_change or notifier.wait
        self._events = events
        self._read_models = read_models
        self._nonces = nonces
        self._limiter = limiter
        self._tokens = task_tokens
        self._state_machine_arn = state_machine_arn
        self._master_secret = master_secret if isinstance(master_secret, Lazy) else Lazy(master_secret)
        self._clock = clock
        self._limits = limits or ElicitationLimits()

    def _state(self, elicitation_id: str) -> tuple[ElicitationState, int]:
        return self._records.load(stream_id(elicitation_id))

    def _execute(
        self,
        elicitation_id: str,
        decide: Callable[[ElicitationState, Any], list[Any]],
        command: Any,
        loaded: tuple[ElicitationState, int] | None = None,
        alongside: tuple[Action, ...] = (),
    ) -> Outcome[ElicitationState]:
        """The command path with the inline read models; wakes this process's waiters on a change."""
        outcome = execute(
            self._events, stream_id(elicitation_id), logic.FOLD, decide, command,
            loaded=loaded, inline=self._records, alongside=alongside,
        )  # fmt: skip
        if outcome.appended:
            self._notifier.notify(model_topic(pending_model(outcome.state.to_agent)))
        return outcome

    def _existing(self, elicitation_id: str) -> tuple[ElicitationState, int]:
        state, version = self._state(elicitation_id)
        if not state.exists:
            raise NotFound(f"elicitation {elicitation_id!r} not found")
        return state, version

    # ---- asking ---------------------------------------------------------------------------------

    def create(self, principal: Principal, request: CreateElicitation) -> CreatedElicitation:
        schemas.check_message(request.message)
        schemas.check_schema(request.schema_)
        if request.to_agent == principal.agent_id:
            raise ValidationFailed("an agent cannot elicit from itself", {"fields": [{"path": "to_agent"}]})
        self._limiter.consume(f"{CREATE_SCOPE}#{principal.agent_id}", self._limits.creates)
        # The execution that waits for the outcome is started from the event stream (`dispatch`).
        command = self._ask(uuid.uuid4().hex, principal.agent_id, request, None)
        registered = self._records.agent_registered(request.to_agent)
        try:
            self._execute(
                command.elicitation_id, logic.ask, command, loaded=(ElicitationState(), 0), alongside=(registered,)
            )
        except AlongsideRefused as refused:
            raise NotFound(
                f"agent {request.to_agent!r} is not registered", {"fields": [{"path": "to_agent"}]}
            ) from refused
        return CreatedElicitation(
            elicitation_id=command.elicitation_id,
            expires_at=command.at + command.timeout_seconds,
            response_key=response_key(self._master_secret.get(), command.elicitation_id, command.salt),
        )

    def _ask(self, elicitation_id: str, from_agent: str, request: CreateElicitation, managed_by: str | None) -> Ask:
        return Ask(
            elicitation_id=elicitation_id,
            from_agent=from_agent,
            to_agent=request.to_agent,
            message=request.message,
            schema=request.schema_,
            priority=request.priority,
            salt=secrets.token_hex(16),
            at=self._clock.now(),
            timeout_seconds=request.timeout_seconds,
            managed_by=managed_by,
        )

    def open_managed(
        self,
        *,
        elicitation_id: str,
        from_agent: str,
        to_agent: str,
        message: str,
        schema: dict[str, Any],
        timeout_seconds: int,
        managed_by: str,
    ) -> None:
        """An elicitation whose wait and deadline belong to another execution (an expert vote of a
        validation round): no execution of its own is started, and opening it twice is a no-op."""
        request = CreateElicitation(
            to_agent=to_agent, message=message, schema=schema, timeout_seconds=timeout_seconds, priority="urgent"
        )
        command = self._ask(elicitation_id, from_agent, request, managed_by)
        self._execute(elicitation_id, logic.ask, command)

    def outcome(self, elicitation_id: str) -> ElicitationState:
        state, _ = self._state(elicitation_id)
        return state

    def withdraw(self, elicitation_id: str, by: str) -> bool:
        """Cancel on the platform's behalf (the question no longer matters); False if it already ended."""
        command = End("withdraw", by, self._clock.now())
        return self._ended(self._execute(elicitation_id, logic.end, command))

    def _ended(self, outcome: Outcome[ElicitationState]) -> bool:
        """After an ending was recorded: resume the execution waiting for it, if one has said so
        (one that has not yet will find the elicitation over when it does, and not wait)."""
        if not outcome.appended:
            return False
        state = outcome.state
        if state.task_token:
            self._tokens.resume(state.task_token, {"status": state.status})
        return True

    def pending(
        self,
        principal: Principal,
        limit: int,
        next_token: str | None,
        wait_seconds: float = 0,
        after: str | None = None,
    ) -> PendingPage:
        """Open elicitations for the caller: urgent first, then oldest first.

        `after` (the `cursor` of an earlier page) lists only questions that page had not shown; with
        `wait_seconds`, an answer with nothing to list is held until something arrives or the wait
        runs out. Each page's `cursor` covers every question open when it was read.
        """
        if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
            raise ValidationFailed(f"wait must be between 0 and {MAX_WAIT_SECONDS} seconds")
        seen = Inbox.parse(after) if after else Inbox()
        topic = model_topic(pending_model(principal.agent_id))
        generation = self._notifier.generation(topic)
        page = self._pending_page(principal, limit, next_token, seen)
        deadline, pauses = self._clock.now() + wait_seconds, self._notifier.pacing.pauses()
        while not page.elicitations and self._clock.now() < deadline:
            admit()
            generation = self._wait(topic, generation, min(next(pauses), max(0.0, deadline - self._clock.now())))
            page = self._pending_page(principal, limit, next_token, seen)
        return page

    def _pending_page(self, principal: Principal, limit: int, next_token: str | None, seen: Inbox) -> PendingPage:
        now = self._clock.now()
        open_now = [entry for entry in self._records.inbox(principal.agent_id) if entry["expires_at"] > now]
        items = sorted((entry for entry in open_now if not seen.covers(entry)), key=_rank)
        if next_token:
            cursor = _decode_cursor(next_token)
            items = [body for body in items if _rank(body) > cursor]
        page = items[:limit]
        token = _encode_cursor(_rank(page[-1])) if len(items) > limit else None
        return PendingPage(
            elicitations=[PendingElicitation.model_validate(b) for b in page],
            next_token=token,
            cursor=seen.extended(open_now).token(),
        )

    # ---- answering ------------------------------------------------------------------------------

    def respond(self, principal: Principal, request: RespondToElicitation) -> RespondResult:
        self._limiter.consume(f"{RESPOND_SCOPE}#{principal.agent_id}", self._limits.responses)
        if request.data is not None:
            schemas.check_data_size(request.data)
        state, version = self._existing(request.elicitation_id)
        if principal.agent_id != state.to_agent:
            self._record_violation(principal, request.elicitation_id, "unauthorized_response")
            raise Forbidden("only the agent this elicitation was addressed to may answer it")
        now = self._clock.now()
        command = Answer(principal.agent_id, self._signed(state, principal.agent_id, request, now), now)
        # The nonce is spent in the transaction that records the answer: a refused answer can be resent.
        nonce = {
            "Put": self._nonces.put(
                f"{RESPOND_SCOPE}#{principal.agent_id}", request.nonce.lower(), now, NONCE_KEEP_SECONDS
            )
        }
        try:
            outcome = self._execute(
                state.elicitation_id, logic.answer, command, loaded=(state, version), alongside=(nonce,)
            )
        except AlongsideRefused as refused:
            raise ResponseReplayed("this response's nonce was used before: a replay") from refused
        self._ended(outcome)
        status: Literal["accepted", "declined"] = "accepted" if request.action == "accept" else "declined"
        return RespondResult(elicitation_id=state.elicitation_id, status=status, responded_at=now)

    def _signed(
        self, state: ElicitationState, responder: str, request: RespondToElicitation, now: float
    ) -> SignedResponse:
        responded_at_ms = int(now * 1000)
        key = response_key(self._master_secret.get(), state.elicitation_id, state.salt)
        return SignedResponse(
            action=request.action,
            responder=responder,
            data=request.data,
            data_hash=data_hash(request.data),
            responded_at=now,
            responded_at_ms=responded_at_ms,
            latency_ms=round((now - state.created_at) * 1000, 3),
            nonce=request.nonce,
            signature=sign_response(
                key, state.elicitation_id, responder, request.action, request.data, responded_at_ms
            ),
        )

    def cancel(self, principal: Principal, elicitation_id: str) -> ElicitationView:
        state, version = self._existing(elicitation_id)
        if principal.agent_id != state.from_agent:
            self._record_violation(principal, elicitation_id, "unauthorized_cancel")
            raise Forbidden("only the requester may cancel an elicitation")
        command = End("cancel", principal.agent_id, self._clock.now())
        outcome = self._execute(elicitation_id, logic.end, command, loaded=(state, version))
        self._ended(outcome)
        return _view(outcome.state, principal)

    def _record_violation(self, principal: Principal, elicitation_id: str, kind: str) -> None:
        violation = ElicitationSecurityViolation(
            agent=principal.agent_id, elicitation_id=elicitation_id, kind=kind, at=self._clock.now()
        )
        self._events.append(violation_stream(uuid.uuid4().hex), [violation], expected_version=0)

    # ---- looking ------------------------------------------------------------------------------

    def status(self, principal: Principal, elicitation_id: str, wait_seconds: float = 0) -> ElicitationView:
        if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
            raise ValidationFailed(f"wait must be between 0 and {MAX_WAIT_SECONDS} seconds")
        state, _ = self._existing(elicitation_id)
        if principal.agent_id not in (state.from_agent, state.to_agent) and principal.role != "admin":
            raise Forbidden("only the requester and the target may see an elicitation")
        topic = stream_topic(stream_id(elicitation_id))
        generation = self._notifier.generation(topic)
        deadline, pauses = self._clock.now() + wait_seconds, self._notifier.pacing.pauses()
        while not state.final and self._clock.now() < deadline:
            admit()
            generation = self._wait(topic, generation, min(next(pauses), max(0.0, deadline - self._clock.now())))
            state, _ = self._state(elicitation_id)
        return _view(state, principal)

    def answered(self, principal: Principal, limit: int, next_token: str | None) -> AnsweredPage:
        """What the caller answered, newest first, each response's signature checked."""
        documents, last = self._read_models.list(answered_model(principal.agent_id), limit, cursor_string(next_token))
        entries = []
        for document in documents:
            body = dict(document.body or {})
            salt, response = body.pop("salt", ""), body.get("response")
            if not response:
                continue
            key = response_key(self._master_secret.get(), body["elicitation_id"], salt)
            valid = verify_response(key, response, body["elicitation_id"])
            entries.append(AnsweredElicitation(**body, signature_valid=valid))
        return AnsweredPage(elicitations=entries, next_token=encode_cursor(last) if last else None)

    def metrics(self) -> ElicitationMetrics:
        counters = self._read_models.counters("metrics", logic.ElicitationMetricsProjection.key)
        counts = {name.removeprefix("status_"): value for name, value in counters.items() if name.startswith("status_")}
        counts["requested"] = counters.get("requested", 0)
        return ElicitationMetrics(
            counts=counts,
            answer_latency_ms=logic.latency_percentiles(counters),
            expiries=counters.get("status_expired", 0),
            rate_limit_rejections={
                "create": self._limiter.rejections(CREATE_SCOPE),
                "respond": self._limiter.rejections(RESPOND_SCOPE),
            },
            security_violations=counters.get("security_violations", 0),
        )

    # ---- the Step Functions lifecycle -------------------------------------------------------

    def dispatch(self, stored: StoredEvent) -> str:
        """React to the stream: a new elicitation starts the execution that enforces its deadline.
        (An ending resumes that execution from the request that recorded it: see `_ended`.)"""
        event = stored.event
        if not isinstance(event, ElicitationRequested):
            return "ignored"
        if event.managed_by:
            return "managed"  # its wait belongs to the execution that opened it
        # Started after the append, so the timer counts down what is left of the deadline.
        remaining = max(1, math.ceil(event.expires_at - self._clock.now()))
        self._tokens.start(
            self._state_machine_arn,
            event.elicitation_id,
            {"elicitation_id": event.elicitation_id, "timeout_seconds": remaining},
        )
        return "started"

    def await_outcome(self, elicitation_id: str, task_token: str) -> dict[str, Any]:
        """Keep the execution's task token with the elicitation; if it is already over, resume at once."""
        if self._records.record_wait(elicitation_id, task_token):
            return {"elicitation_id": elicitation_id, "recorded": True, "status": "pending"}
        state, _ = self._state(elicitation_id)
        status = state.status if state.exists else "missing"
        self._tokens.resume(task_token, {"status": status})
        return {"elicitation_id": elicitation_id, "recorded": False, "status": status}

    def expire(self, elicitation_id: str) -> dict[str, Any]:
        """The deadline passed: mark the elicitation expired unless it already ended."""
        command = End("expire", "deadline", self._clock.now())
        outcome = self._execute(elicitation_id, logic.end, command)
        if outcome.appended:
            return {"elicitation_id": elicitation_id, "expired": True, "status": "expired"}
        status = outcome.state.status if outcome.state.exists else None
        return {"elicitation_id": elicitation_id, "expired": False, "status": status}


def _view(state: ElicitationState, principal: Principal) -> ElicitationView:
    return ElicitationView(
        elicitation_id=state.elicitation_id,
        from_agent=state.from_agent,
        to_agent=state.to_agent,
        message=state.message,
        schema=state.schema_,
        priority=state.priority,
        status=state.status,
        created_at=state.created_at,
        expires_at=state.expires_at,
        finished_at=state.finished_at,
        response=state.response if principal.agent_id == state.from_agent else None,
    )


def _rank(body: dict[str, Any]) -> tuple[int, float, str]:
    return logic.PRIORITY_RANK[body["priority"]], body["created_at"], body["elicitation_id"]


def _encode_cursor(cursor: tuple[int, float, str]) -> str:
    return encode_cursor(list(cursor))


def _decode_cursor(token: str) -> tuple[int, float, str]:
    value = decode_cursor(token)
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not isinstance(value[0], int)
        or not isinstance(value[1], int | float)
        or not isinstance(value[2], str)
    ):
        raise MalformedRequest("next_token is not a token this API issued", code="INVALID_CURSOR")
    return value[0], float(value[1]), value[2]


__all__ = ["ElicitationLimits", "ElicitationService", "Ending"]
