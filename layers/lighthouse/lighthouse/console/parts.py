"""How the console's service is built from a function's `Components` (kept out of composition.py,
which every function imports)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lighthouse.console.models import ExecutionKind
from lighthouse.console.service import ConsoleService, Machines, OverviewSources
from lighthouse.console.stats import RecentRequests
from lighthouse.console.store import Executions
from lighthouse.validation.models import AuditEntry

if TYPE_CHECKING:
    from lighthouse.composition import Components


def console_service(parts: Components, requests: RecentRequests) -> ConsoleService:
    from lighthouse.elicitation.logic import ElicitationMetricsProjection
    from lighthouse.validation.logic import EVERY_AGENT, audit_model

    settings, sqs = parts.settings, parts.client("sqs")
    kinds: dict[str, ExecutionKind] = {
        settings.elicitation_state_machine_arn: "elicitation",
        settings.validation_state_machine_arn: "expert_round",
        settings.fleet_command_state_machine_arn: "fleet_command",
        settings.fleet_rollout_state_machine_arn: "rollout",
        settings.runs_state_machine_arn: "run",
    }
    dead_letters = {
        "projector failures": settings.projector_failure_queue_url,
        "dispatch failures": settings.dispatch_failure_queue_url,
        "presence": settings.presence_dead_letter_queue_url,
        "fleet ingest": settings.fleet_ingest_dead_letter_queue_url,
        "run notifications": settings.run_notify_dead_letter_queue_url,
    }

    def expiry_counts() -> tuple[int, int]:
        counters = parts.read_models.counters("metrics", ElicitationMetricsProjection.key)
        return counters.get("requested", 0), counters.get("status_expired", 0)

    def fleet_presence() -> list[str]:
        return [agent.presence for agent in parts.fleet.agents(200, None).agents]

    def recent_decisions(limit: int) -> list[AuditEntry]:
        # Keys count time down, so the read model's key order is newest first.
        documents, _ = parts.read_models.list(audit_model(EVERY_AGENT), limit)
        return [AuditEntry.model_validate(document.body) for document in documents if document.body]

    def dead_letter_depths() -> dict[str, int]:
        depths = {}
        for name, url in dead_letters.items():
            if url:
                attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
                depths[name] = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
        return depths

    return ConsoleService(
        sign_in=parts.agents.create_session,
        executions=Executions(parts.client("stepfunctions")),
        machines=Machines({arn: kind for arn, kind in kinds.items() if arn}, settings.pipeline_machine_prefix),
        sources=OverviewSources(
            expiry_counts=expiry_counts,
            fleet_presence=fleet_presence,
            recent_decisions=recent_decisions,
            dead_letter_depths=dead_letter_depths,
            stream_lag_seconds=lambda: None,
            requests=requests,
        ),
        clock=parts.clock,
    )
