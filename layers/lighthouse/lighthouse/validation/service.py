"""The validation gate as a service: decide, record, escalate to experts, conclude.

Decisions come from the in-process gate (rules + Cedar). An `escalate` with enough experts
available starts an expert round: a Step Functions execution (started from the event stream)
that asks each expert through a vote elicitation and waits on a task token per expert. Votes
are combined by `consensus`; the round ends early as soon as the remaining experts can no
longer change the outcome. The decisions on the request's stream are in `validation.logic`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lighthouse.auth.tokens import Principal
from lighthouse.clock import Clock
from lighthouse.elicitation.service import ElicitationService
from lighthouse.elicitation.signing import response_key, sign_response
from lighthouse.errors import Forbidden, NotFound, ValidationFailed
from lighthouse.events import EventStore, ReadModelStore, StoredEvent
from lighthouse.events.command import execute
from lighthouse.lazy import Lazy
from lighthouse.notify import Notifier, await_stream
from lighthouse.notify import notifier as process_notifier
from lighthouse.paging import cursor_string, encode_cursor
from lighthouse.ratelimit import Limit, TokenBucketLimiter
from lighthouse.validation import logic
from lighthouse.validation.gate import DecisionGate
from lighthouse.validation.models import (
    HOOK_DECISIONS,
    MAX_WAIT_SECONDS,
    VOTE_SCHEMA,
    AuditEntry,
    AuditPage,
    Conclude,
    CountVote,
    GateRecord,
    PanelMember,
    PolicyView,
    PreToolUseInput,
    PreToolUseOutput,
    ReplacePolicies,
    Request,
    ValidateRequest,
    ValidationRequested,
    ValidationResult,
    ValidationState,
    hook_output,
)
from lighthouse.validation.policy import PolicyEngine, check_policies, default_policies, policy_schema
from lighthouse.validation.store import POLICY_STREAM, ValidationAudit, stream_id
from lighthouse.waits import TaskTokens

VALIDATE_SCOPE = "validate"
SYSTEM_AGENT = "lighthouse-validation"


class LlmReviewer(Protocol):
    expert_id: str

    def review(self, tool_name: str, tool_input: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        """A vote ({decision, confidence, reasoning, concerns, suggestions}); never raises."""
        ...


@dataclass(frozen=True)
class ExpertPolicy:
    panel_size: int = 3
    timeout_seconds: int = 30
    hook_wait_seconds: float = 10.0


class PolicyStore:
    """The current Cedar policy set: the latest VALIDATION_POLICY_UPDATED event, or the defaults.

    Checked against the stream at most every `refresh_seconds`, so a new version reaches every
    container within that time (and the one that stored it at once).
    """

    def __init__(self, events: EventStore, clock: Clock, refresh_seconds: float = 5.0) -> None:
        self._events = events
        self._clock = clock
        self._refresh = refresh_seconds
        self._engine: PolicyEngine | None = None
        self._next_check = 0.0

    def engine(self) -> PolicyEngine:
        now = self._clock.now()
        if self._engine is None or now >= self._next_check:
            version = self._events.current_version(POLICY_STREAM)
            if self._engine is None or version != self._engine.version:
                state, version = self._events.load_state(POLICY_STREAM, logic.POLICY_FOLD)
                self._engine = PolicyEngine.load(state.policies or default_policies(), version)
            self._next_check = now + self._refresh
        return self._engine

    def view(self) -> PolicyView:
        state, version = self._events.load_state(POLICY_STREAM, logic.POLICY_FOLD)
        return PolicyView(
            version=version,
            policies=state.policies or default_policies(),
            updated_by=state.updated_by,
            updated_at=state.updated_at,
            schema=policy_schema(),
        )

    def replace(self, text: str, by: str) -> PolicyView:
        check_policies(text)
        state, version = self._events.load_state(POLICY_STREAM, logic.POLICY_FOLD)
        command = ReplacePolicies(text, by, self._clock.now(), expected_version=version)
        outcome = execute(
            self._events, POLICY_STREAM, logic.POLICY_FOLD, logic.replace_policies, command, loaded=(state, version)
        )
        self._engine = PolicyEngine.load(text, outcome.version)
        self._next_check = self._clock.now() + self._refresh
        return self.view()


class ValidationService:
    def __init__(
        self,
        *,
        events: EventStore,
        read_models: ReadModelStore,
        audit: ValidationAudit,
        limiter: TokenBucketLimiter,
        gate: DecisionGate,
        policies: PolicyStore,
        elicitations: ElicitationService,
        experts_available: Callable[[], Sequence[str]],
        start_round: Callable[[str, dict[str, Any]], None],
        task_tokens: TaskTokens,
        master_secret: str | Lazy[str],
        clock: Clock,
        limit: Limit,
        experts: ExpertPolicy | None = None,
        llm: LlmReviewer | None = None,
        notifier: Notifier = process_notifier,
        wait_for_change: Callable[[str, int, float], int] | None = None,
    ) -> None:
        self._events = events
        self._read_models = read_models
        self._audit = audit
        self._limiter = limiter
        self._gate = gate
        self._policies = policies
        self._elicitations = elicitations
        self._experts_available = experts_available
        self._start_round = start_round
        self._tokens = task_tokens
        self._master_secret = master_secret if isinstance(master_secret, Lazy) else Lazy(master_secret)
        self._clock = clock
        self._limit = limit
        self._expert_policy = experts or ExpertPolicy()
        self._llm = llm
        self._notifier = notifier
        self._wait = wait_for_change or notifier.wait

    # ---- deciding ----------------------------------------------------------------------------

    def validate(self, principal: Principal, request: ValidateRequest) -> ValidationResult:
        self._limiter.consume(f"{VALIDATE_SCOPE}#{principal.agent_id}", self._limit)
        cwd, env = _where_it_runs(request.context)
        gate = self._gate.decide(principal.agent_id, principal.role, request.tool_name, request.tool_input, cwd, env)
        panel = self._panel(principal.agent_id) if gate.decision == "escalate" else []
        reason = gate.reason
        if gate.decision == "escalate" and not panel:
            reason += "; no expert round: fewer than 2 experts are available"
        requested = ValidationRequested(
            request_id=uuid.uuid4().hex,
            agent=principal.agent_id,
            role=principal.role,
            tool_name=request.tool_name,
            tool_input=logic.for_the_record(request.tool_input),
            cwd=cwd,
            context=logic.for_the_record({k: v for k, v in request.context.items() if k != "cwd"}),
            at=self._clock.now(),
            gate=GateRecord(
                decision=gate.decision,
                confidence=gate.confidence,
                reason=reason,
                matched_rules=gate.matched_rules,
                layer=gate.layer,
                cache_hit=gate.cache_hit,
                policy_version=gate.policy_version,
            ),
            experts=panel,
            expert_timeout_seconds=self._expert_policy.timeout_seconds,
        )
        # A new stream: nothing to load.
        outcome = execute(
            self._events, stream_id(requested.request_id), logic.FOLD, logic.request, Request(requested),
            loaded=(logic.FOLD.initial(), 0), inline=self._audit,
        )  # fmt: skip
        return logic.result_view(outcome.state)

    def _panel(self, requester: str) -> list[PanelMember]:
        size = self._expert_policy.panel_size
        panel: list[PanelMember] = []
        if self._llm is not None:
            panel.append(PanelMember(id=self._llm.expert_id, kind="llm"))
        for expert in self._experts_available():
            if len(panel) >= size:
                break
            if expert != requester:
                panel.append(PanelMember(id=expert, kind="agent"))
        return panel if len(panel) >= 2 else []

    def hook(self, principal: Principal, payload: PreToolUseInput) -> PreToolUseOutput:
        """Claude Code's PreToolUse: approved -> allow, blocked -> deny, escalate -> ask (or the experts'
        verdict, if it arrives within the hook's wait budget)."""
        context: dict[str, Any] = {
            "cwd": payload.cwd,
            "session_id": payload.session_id,
            "tool_use_id": payload.tool_use_id,
            "permission_mode": payload.permission_mode,
            "source": "claude-code-hook",
        }
        request = ValidateRequest(
            tool_name=payload.tool_name,
            tool_input=payload.tool_input,
            context={k: v for k, v in context.items() if v is not None},
        )
        result = self.validate(principal, request)
        if result.status == "awaiting_experts" and self._expert_policy.hook_wait_seconds > 0:
            result = self.result(
                principal, result.request_id, min(self._expert_policy.hook_wait_seconds, MAX_WAIT_SECONDS)
            )
        permission = HOOK_DECISIONS[result.decision]
        if result.status == "awaiting_experts":
            permission = "ask"
        reason = f"Lighthouse: {result.decision} ({result.decided_by}): {result.reason} [request {result.request_id}]"
        return hook_output(permission, reason)

    # ---- reading -------------------------------------------------------------------------------

    def _state(self, request_id: str) -> tuple[ValidationState, int]:
        return self._events.load_state(stream_id(request_id), logic.FOLD)

    def _existing(self, request_id: str) -> ValidationRequested:
        state, _ = self._state(request_id)
        if state.request is None:
            raise NotFound(f"validation request {request_id!r} not found")
        return state.request

    def result(self, principal: Principal, request_id: str, wait_seconds: float = 0) -> ValidationResult:
        if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
            raise ValidationFailed(f"wait must be between 0 and {MAX_WAIT_SECONDS} seconds")
        state, _ = self._state(request_id)
        if state.request is None:
            raise NotFound(f"validation request {request_id!r} not found")
        if principal.agent_id != state.request.agent and principal.role not in ("admin", "expert"):
            raise Forbidden("only the requesting agent, experts and admins may read a validation request")
        state = await_stream(
            stream_id(request_id),
            state,
            finished=lambda current: current.decided,
            reload=lambda: self._state(request_id)[0],
            current_version=self._events.current_version,
            now=self._clock.now,
            wait_seconds=wait_seconds,
            wait=self._wait,
            on=self._notifier,
        )
        return logic.result_view(state)

    def audit(self, principal: Principal, agent: str | None, limit: int, next_token: str | None) -> AuditPage:
        agent = agent or principal.agent_id
        if agent != principal.agent_id and principal.role != "admin":
            raise Forbidden("only admins may read another agent's validation audit")
        documents, last = self._read_models.list(logic.audit_model(agent), limit, cursor_string(next_token))
        return AuditPage(
            entries=[AuditEntry.model_validate(d.body) for d in documents if d.body],
            next_token=encode_cursor(last) if last else None,
        )

    def policy(self) -> PolicyView:
        return self._policies.view()

    def replace_policy(self, principal: Principal, policies: str) -> PolicyView:
        if principal.role != "admin":
            raise Forbidden("only admins may replace the validation policies")
        return self._policies.replace(policies, principal.agent_id)

    # ---- the expert round (Step Functions steps) ---------------------------------------------

    def dispatch(self, stored: StoredEvent) -> str:
        """Start the round of a request that needs experts (from the event stream)."""
        event = stored.event
        if not isinstance(event, ValidationRequested) or not event.experts:
            return "ignored"
        self._start_round(
            event.request_id,
            {
                "request_id": event.request_id,
                "experts": [member.model_dump() for member in event.experts],
                "timeout_seconds": event.expert_timeout_seconds,
            },
        )
        return "started"

    def ask_expert(self, request_id: str, expert: str, task_token: str) -> dict[str, Any]:
        state, _ = self._state(request_id)
        if state.request is None:
            raise NotFound(f"validation request {request_id!r} not found")
        elicitation_id = logic.vote_elicitation_id(request_id, expert)
        if state.decided:  # settled before this expert's turn came: do not ask at all
            self._tokens.resume(task_token, {"status": "withdrawn"})
            return {"elicitation_id": elicitation_id, "asked": False}
        self._elicitations.open_managed(
            elicitation_id=elicitation_id,
            from_agent=SYSTEM_AGENT,
            to_agent=expert,
            message=logic.question(state.request),
            schema=VOTE_SCHEMA,
            timeout_seconds=state.request.expert_timeout_seconds,
            managed_by=stream_id(request_id),
        )
        if self._state(request_id)[0].decided:
            # Settled while the question was being opened; the round's withdrawal may have missed it.
            self._elicitations.withdraw(elicitation_id, SYSTEM_AGENT)
        return self._elicitations.await_outcome(elicitation_id, task_token)

    def expire_vote(self, request_id: str, expert: str) -> dict[str, Any]:
        self._elicitations.expire(logic.vote_elicitation_id(request_id, expert))
        return self.record_vote(request_id, expert)

    def record_vote(self, request_id: str, expert: str) -> dict[str, Any]:
        """Count the expert's answer (a signed, schema-valid elicitation response) or its absence."""
        elicitation_id = logic.vote_elicitation_id(request_id, expert)
        answer = self._elicitations.outcome(elicitation_id)
        status = answer.status if answer.exists else "missing"
        if status == "missing" and self._state(request_id)[0].decided:
            status = "cancelled"  # never asked: the round was settled first
        now = self._clock.now()
        if status == "accepted" and answer.response is not None:
            response = answer.response
            key = response_key(self._master_secret.get(), elicitation_id, answer.salt)
            expected = sign_response(
                key, elicitation_id, response.responder, "accept", response.data, response.responded_at_ms
            )
            if expected != response.signature or response.responder != expert:
                vote = CountVote(
                    expert, elicitation_id, "failed", None, None, "the vote's signature does not verify", now
                )
            else:
                vote = CountVote(expert, elicitation_id, "voted", response.data, response.signature, None, now)
        else:
            outcome = {"declined": "declined", "expired": "timed_out", "cancelled": "withdrawn"}.get(status, "failed")
            vote = CountVote(expert, elicitation_id, outcome, None, None, f"vote elicitation {status}", now)  # type: ignore[arg-type]
        return self._add_vote(request_id, vote)

    def llm_vote(self, request_id: str, expert: str) -> dict[str, Any]:
        requested = self._existing(request_id)
        if self._llm is None or expert != self._llm.expert_id:
            vote: dict[str, Any] = {
                "decision": "block",
                "confidence": 0.0,
                "reasoning": "the LLM expert is not configured in this deployment",
                "concerns": ["llm_unavailable"],
                "suggestions": [],
            }
        else:
            context = {"cwd": requested.cwd, "gate": requested.gate.model_dump(mode="json")}
            vote = self._llm.review(requested.tool_name, requested.tool_input, context)
        return self._add_vote(request_id, CountVote(expert, None, "voted", vote, None, None, self._clock.now()))

    def conclude(self, request_id: str) -> dict[str, Any]:
        """After every expert voted or timed out: decide with whatever votes there are."""
        return self._decide(request_id, final=True)

    def _add_vote(self, request_id: str, vote: CountVote) -> dict[str, Any]:
        execute(self._events, stream_id(request_id), logic.FOLD, logic.count_vote, vote, inline=self._audit)
        decided = self._decide(request_id, final=False)
        return {"request_id": request_id, "expert": vote.expert, "outcome": vote.outcome, **decided}

    def _decide(self, request_id: str, final: bool) -> dict[str, Any]:
        outcome = execute(
            self._events, stream_id(request_id), logic.FOLD, logic.conclude, Conclude(final, self._clock.now()),
            inline=self._audit,
        )  # fmt: skip
        completed = outcome.state.completed
        if completed is None:
            return {"decided": False}
        if outcome.appended and not final:
            # The outcome is settled: release the experts who have not answered yet.
            for expert in logic.open_experts(outcome.state):
                self._elicitations.withdraw(logic.vote_elicitation_id(request_id, expert), SYSTEM_AGENT)
        return {"decided": True, "decision": completed.decision}


def _where_it_runs(context: dict[str, Any]) -> tuple[str | None, dict[str, str]]:
    """The request's working directory and the environment the gate expands paths with (HOME, TMPDIR)."""
    cwd = context.get("cwd")
    if cwd is not None and (not isinstance(cwd, str) or not cwd.startswith("/")):
        raise ValidationFailed("context.cwd must be an absolute path", {"path": "context.cwd"})
    return cwd, _paths_environment(context.get("env") or {})


def _paths_environment(env: Any) -> dict[str, str]:
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ValidationFailed("context.env must be an object of strings (HOME, TMPDIR)", {"path": "context.env"})
    return {key: env[key] for key in ("HOME", "TMPDIR") if key in env and env[key].startswith("/")}
