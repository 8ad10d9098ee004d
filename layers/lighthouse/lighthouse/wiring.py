"""Builds the services a function needs from settings, once per process (container)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from lighthouse.agents.logic import AgentDirectoryProjection
from lighthouse.agents.models import AgentView
from lighthouse.agents.service import AgentService, PresencePolicy, SignInLimits
from lighthouse.api.guards import Guards
from lighthouse.auth.hook_tokens import HookTokens
from lighthouse.auth.keys import hook_token_key, session_token_key
from lighthouse.auth.nonces import NonceStore
from lighthouse.auth.tokens import Principal, TokenSigner
from lighthouse.aws import client
from lighthouse.aws import reset as aws_clients_cache_clear
from lighthouse.clock import SystemClock
from lighthouse.config import get_settings
from lighthouse.consumers import PoisonSink, sqs_sender
from lighthouse.elicitation.logic import (
    ElicitationMetricsProjection,
    ElicitationStatusProjection,
    PendingProjection,
)
from lighthouse.elicitation.models import CreateElicitation
from lighthouse.elicitation.service import ElicitationLimits, ElicitationService
from lighthouse.events import EventStore, Projector, ReadModelStore
from lighthouse.lazy import Lazy
from lighthouse.leases import Lease, WaitCaps, WaitLeases
from lighthouse.notify import Pacing, admission, notifier
from lighthouse.pipelines.connections import ConnectionStore
from lighthouse.pipelines.memory import MemoryStore
from lighthouse.pipelines.registry import Engine, PipelineRegistry
from lighthouse.pipelines.service import TaskService
from lighthouse.pipelines.stages import StageRunner
from lighthouse.ratelimit import Limit, TokenBucketLimiter
from lighthouse.secrets import resolve_llm_api_key, resolve_master_secret
from lighthouse.validation.gate import DecisionGate
from lighthouse.validation.llm import LlmExpert, LlmSettings
from lighthouse.validation.logic import ValidationAuditProjection
from lighthouse.validation.service import ExpertPolicy, PolicyStore, ValidationService
from lighthouse.waits import TaskTokens


@lru_cache(maxsize=1)
def master_secret() -> str:
    return resolve_master_secret(get_settings(), client("secretsmanager"))


@lru_cache(maxsize=1)
def lazy_master_secret() -> Lazy[str]:
    """Read from Secrets Manager on first use: functions that never sign or verify never read it."""
    return Lazy(master_secret)


@lru_cache(maxsize=1)
def event_store() -> EventStore:
    settings = get_settings()
    return EventStore.dynamodb(
        client("dynamodb"),
        settings.events_table,
        settings.snapshots_table,
        SystemClock(),
        snapshot_every=settings.snapshot_every,
    )


@lru_cache(maxsize=1)
def read_models() -> ReadModelStore:
    return ReadModelStore(client("dynamodb"), get_settings().read_models_table)


@lru_cache(maxsize=1)
def limiter() -> TokenBucketLimiter:
    return TokenBucketLimiter(client("dynamodb"), get_settings().rate_limits_table, SystemClock())


@lru_cache(maxsize=1)
def agent_service() -> AgentService:
    settings = get_settings()
    secret = lazy_master_secret()
    return AgentService(
        events=event_store(),
        read_models=read_models(),
        nonces=NonceStore(client("dynamodb"), settings.nonces_table),
        limiter=limiter(),
        signer=TokenSigner(secret.map(session_token_key)),
        master_secret=secret,
        clock=SystemClock(),
        presence=PresencePolicy(settings.heartbeat_interval_seconds),
        token_ttl_seconds=settings.token_ttl_seconds,
        clock_skew_seconds=settings.clock_skew_seconds,
        sign_in=SignInLimits(
            sessions=Limit(settings.sessions_per_minute, settings.rate_limit_burst),
            failures_per_source=Limit(settings.signin_failures_per_minute_per_source, settings.rate_limit_burst),
            failures_per_agent=Limit(settings.signin_failures_per_minute_per_agent, settings.rate_limit_burst),
        ),
        heartbeat_limit=Limit(settings.heartbeats_per_minute, settings.rate_limit_burst),
    )


def _pace_long_polls() -> None:
    settings = get_settings()
    maximum = settings.long_poll_recheck_seconds
    notifier.pacing = Pacing(first=min(settings.long_poll_first_recheck_seconds, maximum), maximum=maximum)


@contextmanager
def _lazy_lease(leases: WaitLeases, agent_id: str, seconds: float) -> Iterator[None]:
    """Admit a long-poll: its lease is taken on its first blocking wait, and released at the end."""
    held: list[Lease] = []

    def acquire() -> None:
        if not held:
            held.append(leases.acquire(agent_id, seconds))

    try:
        with admission(acquire):
            yield
    finally:
        for lease in held:
            lease.release()


@lru_cache(maxsize=1)
def api_guards() -> Guards:
    """What every API route checks before its view: the caller, its request budget, its open waits."""
    settings = get_settings()
    _pace_long_polls()
    agents = agent_service()
    general = Limit(settings.requests_per_minute, settings.request_burst)
    leases = WaitLeases(
        client("dynamodb"),
        settings.rate_limits_table,
        SystemClock(),
        WaitCaps(per_agent=settings.max_waits_per_agent, total=settings.max_open_waits),
    )

    def charge(principal: Principal) -> None:
        limiter().consume(f"requests#{principal.agent_id}", general)

    return Guards(
        authenticate=agents.authenticate,
        charge=charge,
        waiting=lambda principal, seconds: _lazy_lease(leases, principal.agent_id, seconds),
        max_body_ceiling=settings.max_body_bytes,
    )


@lru_cache(maxsize=1)
def hook_tokens() -> HookTokens:
    return HookTokens(
        TokenSigner(lazy_master_secret().map(hook_token_key)),
        event_store(),
        SystemClock(),
        get_settings().hook_token_ttl_seconds,
    )


@functools.cache
def poison_sink(consumer: str, queue_url: str) -> PoisonSink:
    """The sink for one consumer's poison records; without a queue they are only logged and counted."""
    from aws_lambda_powertools import Logger

    send = sqs_sender(client("sqs"), queue_url) if queue_url else (lambda body: None)
    return PoisonSink(consumer, send, Logger(service=f"lighthouse-{consumer}"))


@lru_cache(maxsize=1)
def projector() -> Projector:
    return Projector(
        event_store(),
        read_models(),
        [AgentDirectoryProjection(), ElicitationStatusProjection(), PendingProjection(), ValidationAuditProjection()],
        counters=[ElicitationMetricsProjection()],
    )


def reset() -> None:
    """Forget every cached service (tests and the local cloud change settings between runs)."""
    for cached in (
        master_secret,
        lazy_master_secret,
        event_store,
        read_models,
        limiter,
        agent_service,
        api_guards,
        poison_sink,
        hook_tokens,
        projector,
        task_tokens,
        elicitation_service,
        idempotency_config,
        idempotent_create,
        pipeline_registry,
        task_service,
        stage_runner,
        connections,
        policy_store,
        validation_gate,
        validation_service,
        get_settings,
    ):
        cached.cache_clear()
    aws_clients_cache_clear()


def _check_master_secret() -> None:
    master_secret()


def health_checks() -> dict[str, Callable[[], None]]:
    settings = get_settings()
    dynamodb = client("dynamodb")
    checks: dict[str, Callable[[], None]] = {
        f"dynamodb:{name}": functools.partial(dynamodb.describe_table, TableName=name)
        for name in (
            settings.events_table,
            settings.snapshots_table,
            settings.read_models_table,
            settings.nonces_table,
            settings.rate_limits_table,
        )
    }
    if settings.presence_queue_url:
        checks["sqs:presence-queue"] = functools.partial(
            client("sqs").get_queue_attributes,
            QueueUrl=settings.presence_queue_url,
            AttributeNames=["QueueArn"],
        )
    checks["secrets:master"] = _check_master_secret
    return checks


@lru_cache(maxsize=1)
def task_tokens() -> TaskTokens:
    return TaskTokens(client("dynamodb"), get_settings().task_tokens_table, client("stepfunctions"))


@lru_cache(maxsize=1)
def elicitation_service() -> ElicitationService:
    settings = get_settings()
    return ElicitationService(
        events=event_store(),
        read_models=read_models(),
        nonces=NonceStore(client("dynamodb"), settings.nonces_table),
        limiter=limiter(),
        task_tokens=task_tokens(),
        state_machine_arn=settings.elicitation_state_machine_arn,
        master_secret=lazy_master_secret(),
        clock=SystemClock(),
        agent_exists=lambda agent_id: agent_service().exists(agent_id),
        limits=ElicitationLimits(
            creates=Limit(settings.elicitation_creates_per_minute, settings.elicitation_burst),
            responses=Limit(settings.elicitation_responses_per_minute, settings.elicitation_burst),
        ),
    )


@lru_cache(maxsize=1)
def idempotency_config() -> Any:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    return IdempotencyConfig(
        event_key_jmespath="[agent, key]",
        payload_validation_jmespath="body",
        expires_after_seconds=86_400,
        raise_on_no_idempotency_key=True,
    )


@lru_cache(maxsize=1)
def idempotent_create() -> Callable[..., dict[str, Any]]:
    """`create` behind Powertools idempotency: (agent, Idempotency-Key) -> the first result, for 24 h.

    A reused key with a different body is refused (the body is part of the validation hash).
    """
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent_function

    persistence = DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table, boto3_client=client("dynamodb"))
    config = idempotency_config()

    def create(request: dict[str, Any]) -> dict[str, Any]:
        principal = Principal(**request["principal"])
        body = CreateElicitation.model_validate(request["body"])
        return elicitation_service().create(principal, body).model_dump(mode="json")

    wrapped: Callable[..., dict[str, Any]] = idempotent_function(
        data_keyword_argument="request", persistence_store=persistence, config=config
    )(create)
    return wrapped


@lru_cache(maxsize=1)
def policy_store() -> PolicyStore:
    return PolicyStore(event_store(), SystemClock(), get_settings().validation_policy_refresh_seconds)


@lru_cache(maxsize=1)
def validation_gate() -> DecisionGate:
    return DecisionGate(policy_store().engine, allowed_roots=get_settings().allowed_roots)


def _experts_available() -> list[str]:
    """Experts that are online (heartbeating), in a stable order: asking a silent one only burns the timeout."""
    experts: list[AgentView] = []
    token: str | None = None
    while True:
        page = agent_service().list(200, token)
        experts.extend(a for a in page.agents if a.role == "expert" and a.presence == "online")
        token = page.next_token
        if not token:
            break
    experts.sort(key=lambda agent: agent.agent_id)
    return [agent.agent_id for agent in experts]


def _llm_expert() -> LlmExpert | None:
    settings = get_settings()
    if not settings.validation_llm_provider:
        return None
    return LlmExpert(
        LlmSettings(
            provider=settings.validation_llm_provider,
            model=settings.validation_llm_model,
            api_key=resolve_llm_api_key(settings, client("secretsmanager")),
            base_url=settings.validation_llm_base_url,
            timeout_seconds=settings.validation_llm_timeout_seconds,
        ),
        bedrock_client=client("bedrock-runtime") if settings.validation_llm_provider == "bedrock" else None,
    )


@lru_cache(maxsize=1)
def validation_service() -> ValidationService:
    settings = get_settings()
    tokens = task_tokens()
    gate = validation_gate()
    return ValidationService(
        events=event_store(),
        read_models=read_models(),
        limiter=limiter(),
        gate=gate,
        policies=policy_store(),
        elicitations=elicitation_service(),
        experts_available=_experts_available,
        start_round=lambda name, payload: tokens.start(settings.validation_state_machine_arn, name, payload),
        task_tokens=tokens,
        master_secret=lazy_master_secret(),
        clock=SystemClock(),
        limit=Limit(settings.validations_per_minute, settings.validation_burst),
        experts=ExpertPolicy(
            panel_size=settings.validation_expert_count,
            timeout_seconds=settings.validation_expert_timeout_seconds,
            hook_wait_seconds=settings.validation_hook_wait_seconds,
        ),
        llm=_llm_expert(),
    )


@lru_cache(maxsize=1)
def connections() -> ConnectionStore:
    return ConnectionStore(client("secretsmanager"), get_settings().connection_secret_prefix)


@lru_cache(maxsize=1)
def pipeline_registry() -> PipelineRegistry:
    settings = get_settings()
    return PipelineRegistry(
        events=event_store(),
        stepfunctions=client("stepfunctions"),
        engine=Engine(
            stage_runner_arn=settings.pipeline_stage_function_arn,
            role_arn=settings.pipeline_role_arn,
            machine_prefix=settings.pipeline_machine_prefix,
            workspace_bucket=settings.workspace_bucket,
        ),
        clock=SystemClock(),
    )


@lru_cache(maxsize=1)
def task_service() -> TaskService:
    return TaskService(
        events=event_store(),
        registry=pipeline_registry(),
        stepfunctions=client("stepfunctions"),
        memory=MemoryStore(client("dynamodb"), get_settings().memory_table),
        clock=SystemClock(),
        projects_of=lambda agent_id: agent_service().projects_of(agent_id),
    )


@lru_cache(maxsize=1)
def stage_runner() -> StageRunner:
    settings = get_settings()
    return StageRunner(
        events=event_store(),
        registry=pipeline_registry(),
        s3=client("s3"),
        memory=MemoryStore(client("dynamodb"), settings.memory_table),
        workspace_bucket=settings.workspace_bucket,
        clock=SystemClock(),
        connections=connections(),
        bedrock_client=lambda: client("bedrock-runtime"),
    )
