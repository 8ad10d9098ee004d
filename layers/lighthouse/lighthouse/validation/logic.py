"""The validation gate as a service: decide, record, escalate to experts, conclude.

Decisions come from the in-process gate (rules + Cedar). An `escalate` with enough experts
available starts an expert round: a Step Functions execution (started from the event stream)
that asks each expert through a vote elicitation and waits on a task token per expert. Votes
are combined by `consensus`; the round ends early as soon as the remaining experts can no
longer change the outcome.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from lighthouse.auth.tokens import Principal
from lighthouse.clock import Clock
from lighthouse.elicitation.logic import ElicitationService
from lighthouse.elicitation.signing import response_key, sign_response
from lighthouse.errors import ConcurrencyError, Conflict, Forbidden, NotFound, ValidationFailed
from lighthouse.events import EventStore, NewEvent, ReadModelStore, StoredEvent
from lighthouse.lazy import Lazy
from lighthouse.notify import Notifier, await_stream
from lighthouse.notify import notifier as process_notifier
from lighthouse.paging import cursor_string, encode_cursor
from lighthouse.ratelimit import Limit, TokenBucketLimiter
from lighthouse.validation.consensus import Vote, consensus
from lighthouse.validation.gate import DecisionGate
from lighthouse.validation.models import (
    HOOK_DECISIONS,
    MAX_WAIT_SECONDS,
    VOTE_SCHEMA,
    AuditEntry,
    AuditPage,
    ConsensusView,
    PolicyView,
    PreToolUseInput,
    PreToolUseOutput,
    ValidateRequest,
    ValidationResult,
    VoteView,
    hook_output,
)
from lighthouse.validation.policy import PolicyEngine, check_policies, default_policies, policy_schema
from lighthouse.validation.state import (
    AUDIT_MODEL,
    COMPLETED,
    EXPERT_VOTED,
    POLICY_STREAM,
    POLICY_UPDATED,
    REQUESTED,
    PolicyReducer,
    ValidationReducer,
    ValidationState,
    stream_id,
)
from lighthouse.waits import TaskTokens

VALIDATE_SCOPE = "validate"
SYSTEM_AGENT = "lighthouse-validation"
MAX_APPEND_ATTEMPTS = 8
STORED_STRING_CHARS = 2000


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
                state, version = self._events.load_state(POLICY_STREAM, PolicyReducer())
                self._engine = PolicyEngine.load(state.policies or default_policies(), version)
            self._next_check = now + self._refresh
        return self._engine

    def view(self) -> PolicyView:
        state, version = self._events.load_state(POLICY_STREAM, PolicyReducer())
        return PolicyView(
            version=version,
            policies=state.policies or default_policies(),
            updated_by=state.updated_by,
            updated_at=state.updated_at,
            schema=policy_schema(),
        )

    def replace(self, text: str, by: str) -> PolicyView:
        check_policies(text)
        version = self._events.current_version(POLICY_STREAM)
        try:
            self._events.append(
                POLICY_STREAM,
                [NewEvent(POLICY_UPDATED, {"policies": text, "by": by, "at": self._clock.now()})],
                expected_version=version,
            )
        except ConcurrencyError as error:
            raise Conflict("the policies changed meanwhile; read them again and retry") from error
        self._engine = PolicyEngine.load(text, version + 1)
        self._next_check = self._clock.now() + self._refresh
        return self.view()


def vote_elicitation_id(request_id: str, expert: str) -> str:
    """Deterministic, so a retried step finds the vote it already asked for."""
    return hashlib.sha256(f"vote\x00{request_id}\x00{expert}".encode()).hexdigest()[:32]


class ValidationService:
    def __init__(
        self,
        *,
        events: EventStore,
        read_models: ReadModelStore,
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
        self._reducer = ValidationReducer()

    # ---- deciding ----------------------------------------------------------------------------

    def validate(self, principal: Principal, request: ValidateRequest) -> ValidationResult:
        self._limiter.consume(f"{VALIDATE_SCOPE}#{principal.agent_id}", self._limit)
        cwd = request.context.get("cwd")
        if cwd is not None and (not isinstance(cwd, str) or not cwd.startswith("/")):
            raise ValidationFailed("context.cwd must be an absolute path", {"path": "context.cwd"})
        gate = self._gate.decide(principal.agent_id, principal.role, request.tool_name, request.tool_input, cwd)
        request_id = uuid.uuid4().hex
        now = self._clock.now()
        panel = self._panel(principal.agent_id) if gate.decision == "escalate" else []
        reason = gate.reason
        if gate.decision == "escalate" and not panel:
            reason += "; no expert round: fewer than 2 experts are available"
        gate_record = {
            "decision": gate.decision,
            "confidence": gate.confidence,
            "reason": reason,
            "matched_rules": gate.matched_rules,
            "layer": gate.layer,
            "cache_hit": gate.cache_hit,
            "policy_version": gate.policy_version,
        }
        requested = NewEvent(
            REQUESTED,
            {
                "request_id": request_id,
                "agent": principal.agent_id,
                "role": principal.role,
                "tool_name": request.tool_name,
                "tool_input": _for_the_record(request.tool_input),
                "cwd": cwd,
                "context": _for_the_record({k: v for k, v in request.context.items() if k != "cwd"}),
                "at": now,
                "gate": gate_record,
                "experts": panel,
                "expert_timeout_seconds": self._expert_policy.timeout_seconds,
            },
        )
        batch = [requested]
        if not panel:
            batch.append(
                NewEvent(
                    COMPLETED,
                    {
                        "request_id": request_id,
                        "agent": principal.agent_id,
                        "requested_at": now,
                        "decision": gate.decision,
                        "confidence": gate.confidence,
                        "reason": reason,
                        "matched_rules": gate.matched_rules,
                        "decided_by": gate.layer,
                        "at": now,
                    },
                )
            )
        self._events.append(stream_id(request_id), batch, expected_version=0)
        return ValidationResult(
            request_id=request_id,
            status="awaiting_experts" if panel else "decided",
            decision=gate.decision,
            confidence=gate.confidence,
            reason=reason,
            matched_rules=gate.matched_rules,
            expert_required=bool(panel),
            cache_hit=gate.cache_hit,
            decided_by=gate.layer,
            experts=[member["id"] for member in panel],
            requested_at=now,
            decided_at=None if panel else now,
        )

    def _panel(self, requester: str) -> list[dict[str, str]]:
        size = self._expert_policy.panel_size
        panel: list[dict[str, str]] = []
        if self._llm is not None:
            panel.append({"id": self._llm.expert_id, "kind": "llm"})
        for expert in self._experts_available():
            if len(panel) >= size:
                break
            if expert != requester:
                panel.append({"id": expert, "kind": "agent"})
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
        return self._events.load_state(stream_id(request_id), self._reducer)

    def result(self, principal: Principal, request_id: str, wait_seconds: float = 0) -> ValidationResult:
        if not 0 <= wait_seconds <= MAX_WAIT_SECONDS:
            raise ValidationFailed(f"wait must be between 0 and {MAX_WAIT_SECONDS} seconds")
        state, _ = self._state(request_id)
        if not state.exists:
            raise NotFound(f"validation request {request_id!r} not found")
        if principal.agent_id != state.agent and principal.role not in ("admin", "expert"):
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
        return _result_view(state)

    def audit(self, principal: Principal, agent: str | None, limit: int, next_token: str | None) -> AuditPage:
        agent = agent or principal.agent_id
        if agent != principal.agent_id and principal.role != "admin":
            raise Forbidden("only admins may read another agent's validation audit")
        documents, last = self._read_models.list(f"{AUDIT_MODEL}#{agent}", limit, cursor_string(next_token))
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

    def dispatch(self, event: StoredEvent) -> str:
        """Start the round of a request that needs experts (from the event stream)."""
        if event.type != REQUESTED or not event.data.get("experts"):
            return "ignored"
        request_id = event.data["request_id"]
        self._start_round(
            request_id,
            {
                "request_id": request_id,
                "experts": event.data["experts"],
                "timeout_seconds": event.data.get("expert_timeout_seconds", self._expert_policy.timeout_seconds),
            },
        )
        return "started"

    def ask_expert(self, request_id: str, expert: str, task_token: str) -> dict[str, Any]:
        state = self._existing(request_id)
        elicitation_id = vote_elicitation_id(request_id, expert)
        if state.decided:  # settled before this expert's turn came: do not ask at all
            self._tokens.resume(task_token, {"status": "withdrawn"})
            return {"elicitation_id": elicitation_id, "asked": False}
        self._elicitations.open_managed(
            elicitation_id=elicitation_id,
            from_agent=SYSTEM_AGENT,
            to_agent=expert,
            message=_question(state),
            schema=VOTE_SCHEMA,
            timeout_seconds=state.expert_timeout_seconds,
            managed_by=stream_id(request_id),
        )
        if self._existing(request_id).decided:
            # Settled while the question was being opened; the round's withdrawal may have missed it.
            self._elicitations.withdraw(elicitation_id, SYSTEM_AGENT)
        return self._elicitations.await_outcome(elicitation_id, task_token)

    def expire_vote(self, request_id: str, expert: str) -> dict[str, Any]:
        self._elicitations.expire(vote_elicitation_id(request_id, expert))
        return self.record_vote(request_id, expert)

    def record_vote(self, request_id: str, expert: str) -> dict[str, Any]:
        """Count the expert's answer (a signed, schema-valid elicitation response) or its absence."""
        elicitation_id = vote_elicitation_id(request_id, expert)
        answer = self._elicitations.outcome(elicitation_id)
        record: dict[str, Any] = {"expert": expert, "elicitation_id": elicitation_id}
        status = answer.status if answer.exists else "missing"
        if status == "missing" and self._existing(request_id).decided:
            status = "cancelled"  # never asked: the round was settled first
        if status == "accepted" and answer.response is not None:
            response = answer.response
            key = response_key(self._master_secret.get(), elicitation_id, answer.salt)
            expected = sign_response(
                key, elicitation_id, response["responder"], "accept", response["data"], response["responded_at_ms"]
            )
            if expected != response["signature"] or response["responder"] != expert:
                record.update(outcome="failed", reason="the vote's signature does not verify")
            else:
                record.update(outcome="voted", vote=response["data"], signature=response["signature"])
        else:
            outcome = {"declined": "declined", "expired": "timed_out", "cancelled": "withdrawn"}.get(status, "failed")
            record.update(outcome=outcome, reason=f"vote elicitation {status}")
        return self._add_vote(request_id, record)

    def llm_vote(self, request_id: str, expert: str) -> dict[str, Any]:
        state = self._existing(request_id)
        if self._llm is None or expert != self._llm.expert_id:
            vote: dict[str, Any] = {
                "decision": "block",
                "confidence": 0.0,
                "reasoning": "the LLM expert is not configured in this deployment",
                "concerns": ["llm_unavailable"],
                "suggestions": [],
            }
        else:
            vote = self._llm.review(state.tool_name, state.tool_input, {"cwd": state.cwd, "gate": state.gate})
        return self._add_vote(request_id, {"expert": expert, "outcome": "voted", "vote": vote})

    def conclude(self, request_id: str) -> dict[str, Any]:
        """After every expert voted or timed out: decide with whatever votes there are."""
        return self._decide(request_id, final=True)

    def _existing(self, request_id: str) -> ValidationState:
        state, _ = self._state(request_id)
        if not state.exists:
            raise NotFound(f"validation request {request_id!r} not found")
        return state

    def _add_vote(self, request_id: str, record: dict[str, Any]) -> dict[str, Any]:
        for _attempt in range(MAX_APPEND_ATTEMPTS):
            state, version = self._state(request_id)
            if record["expert"] in state.votes:
                break  # a retried step: already counted
            try:
                self._events.append(
                    stream_id(request_id),
                    [NewEvent(EXPERT_VOTED, {**record, "request_id": request_id, "at": self._clock.now()})],
                    expected_version=version,
                )
                break
            except ConcurrencyError:
                continue
        else:
            raise ConcurrencyError(f"validation {request_id} is too contended to record a vote")
        decided = self._decide(request_id, final=False)
        return {"request_id": request_id, "expert": record["expert"], "outcome": record["outcome"], **decided}

    def _decide(self, request_id: str, final: bool) -> dict[str, Any]:
        for _attempt in range(MAX_APPEND_ATTEMPTS):
            state, version = self._state(request_id)
            if state.decided:
                return {"decided": True, "decision": state.completed["decision"] if state.completed else None}
            votes = _votes(state)
            result = consensus(votes)
            if not final and not _settled(votes, len(state.experts)):
                return {"decided": False}
            outlier_note = {"outliers": list(result.outliers)} if result.outliers else {}
            completed = {
                "request_id": request_id,
                "agent": state.agent,
                "requested_at": state.requested_at,
                "decision": result.decision,
                "confidence": result.confidence,
                "reason": f"experts: {result.reason}",
                "matched_rules": list(state.gate.get("matched_rules", [])),
                "decided_by": "experts",
                "consensus": {
                    "reached": result.reached,
                    "agreement": result.agreement,
                    "distribution": result.distribution,
                    "outliers": list(result.outliers),
                    "counted": list(result.counted),
                },
                "early": not final,
                "at": self._clock.now(),
                **outlier_note,
            }
            try:
                self._events.append(stream_id(request_id), [NewEvent(COMPLETED, completed)], expected_version=version)
            except ConcurrencyError:
                continue
            if not final:
                self._withdraw_open_votes(state)
            return {"decided": True, "decision": result.decision}
        raise ConcurrencyError(f"validation {request_id} is too contended to conclude")

    def _withdraw_open_votes(self, state: ValidationState) -> None:
        """The outcome is settled: release the experts who have not answered yet."""
        for member in state.experts:
            if member["kind"] == "agent" and member["id"] not in state.votes:
                self._elicitations.withdraw(vote_elicitation_id(state.request_id, member["id"]), SYSTEM_AGENT)


def _votes(state: ValidationState) -> list[Vote]:
    votes = []
    for expert, record in state.votes.items():
        if record.get("outcome") == "voted" and record.get("vote"):
            vote = record["vote"]
            votes.append(
                Vote(
                    expert=expert,
                    decision=vote["decision"],
                    confidence=float(vote["confidence"]),
                    reasoning=str(vote.get("reasoning", "")),
                    suggestions=tuple(vote.get("suggestions", [])),
                )
            )
    return votes


def _settled(votes: Sequence[Vote], panel_size: int) -> bool:
    """True when no set of remaining votes can change the outcome: one decision already holds 2/3
    of the whole panel."""
    counts: dict[str, int] = {}
    for vote in votes:
        counts[vote.decision] = counts.get(vote.decision, 0) + 1
    return any(3 * count >= 2 * panel_size for count in counts.values())


def _question(state: ValidationState) -> str:
    summary = json.dumps(state.tool_input, sort_keys=True)[:2000]
    return (
        f"Validation request {state.request_id}: agent {state.agent} ({state.role}) wants to run "
        f"{state.tool_name} with {summary} in {state.cwd or 'an unknown directory'}. "
        f"The gate said: {state.gate.get('reason')}. Vote approve, block, modify or escalate."
    )


def _for_the_record(value: Any) -> Any:
    """Long strings (file contents) are stored as their length and hash, not in full."""
    if isinstance(value, str) and len(value) > STORED_STRING_CHARS:
        return {"truncated": True, "length": len(value), "sha256": hashlib.sha256(value.encode()).hexdigest()}
    if isinstance(value, dict):
        return {k: _for_the_record(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_for_the_record(v) for v in value]
    return value


def _result_view(state: ValidationState) -> ValidationResult:
    completed = state.completed
    decision_source = completed or state.gate
    votes = []
    outliers = set((completed or {}).get("consensus", {}).get("outliers", []))
    for expert, record in state.votes.items():
        vote = record.get("vote") or {}
        votes.append(
            VoteView(
                expert=expert,
                decision=vote.get("decision"),
                confidence=vote.get("confidence"),
                reasoning=vote.get("reasoning") or record.get("reason"),
                concerns=list(vote.get("concerns", [])),
                suggestions=list(vote.get("suggestions", [])),
                outcome=record["outcome"],
                outlier=expert in outliers,
            )
        )
    consensus_view = ConsensusView(**completed["consensus"]) if completed and completed.get("consensus") else None
    decided_by: Literal["rules", "policy", "fallback", "experts"] = (
        completed["decided_by"] if completed else state.gate["layer"]
    )
    return ValidationResult(
        request_id=state.request_id,
        status="decided" if completed else "awaiting_experts",
        decision=decision_source["decision"],
        confidence=decision_source["confidence"],
        reason=decision_source["reason"],
        matched_rules=decision_source["matched_rules"],
        expert_required=bool(state.experts),
        cache_hit=bool(state.gate.get("cache_hit")),
        decided_by=decided_by,
        experts=[member["id"] for member in state.experts],
        votes=votes,
        consensus=consensus_view,
        requested_at=state.requested_at,
        decided_at=completed["at"] if completed else None,
    )
