"""The parts a function's composition root is built from.

Each function's `app.py` has a small `compose(parts) -> Root` that takes from a `Components` only
what its handlers use and hands the result to them; nothing here is process-wide. A `Components`
builds each part once, on first use, from its settings and its AWS clients, so a function that
never signs anything never reads the master secret. Tests build a `Components` over the emulator
(or replace a part with a fake) and compose roots from it the same way.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from lighthouse.agents.logic import AgentDirectoryProjection
from lighthouse.agents.models import AgentView
from lighthouse.agents.service import AgentService, PresencePolicy, SignInLimits
from lighthouse.api.guards import Guards
from lighthouse.auth.hook_tokens import HookTokens
from lighthouse.auth.keys import hook_token_key, mqtt_password_key, mqtt_platform_password, session_token_key
from lighthouse.auth.nonces import NonceStore
from lighthouse.auth.tokens import Principal, TokenSigner
from lighthouse.aws import AwsClients
from lighthouse.clock import Clock, SystemClock
from lighthouse.config import Settings
from lighthouse.consumers import PoisonSink, sqs_sender
from lighthouse.elicitation.logic import ElicitationMetricsProjection
from lighthouse.elicitation.models import CreateElicitation
from lighthouse.elicitation.service import ElicitationLimits, ElicitationService
from lighthouse.elicitation.store import ElicitationRecords
from lighthouse.errors import ConfigurationError
from lighthouse.events import CounterProjection, EventStore, Projection, Projector, ReadModelStore
from lighthouse.events.inline import InlineState
from lighthouse.fleet.rollout_service import RolloutService
from lighthouse.fleet.service import FleetService
from lighthouse.lazy import Lazy
from lighthouse.leases import Lease, WaitCaps, WaitLeases
from lighthouse.logs import logger as logger_for
from lighthouse.notify import Pacing, admission, notifier
from lighthouse.pipelines.connections import ConnectionStore
from lighthouse.pipelines.memory import MemoryStore
from lighthouse.pipelines.models import TaskState
from lighthouse.pipelines.registry import Engine, PipelineRegistry
from lighthouse.pipelines.service import TaskService
from lighthouse.pipelines.stages import StageRunner
from lighthouse.pipelines.store import task_states
from lighthouse.ratelimit import Limit, TokenBucketLimiter
from lighthouse.runs.jobs import RunJobRunner, Storage
from lighthouse.runs.ledger import LlmLedger, Who
from lighthouse.runs.service import RunService
from lighthouse.runs.store import RunStates
from lighthouse.secrets import resolve_llm_api_key, resolve_master_secret
from lighthouse.validation.gate import DecisionGate
from lighthouse.validation.llm import LlmExpert, LlmSettings
from lighthouse.validation.service import ExpertPolicy, PolicyStore, ValidationService
from lighthouse.validation.store import ValidationAudit
from lighthouse.waits import TaskTokens

if TYPE_CHECKING:  # built on first use: tree-sitter is only in the functions that render views
    from lighthouse.flags.service import FlagsService
    from lighthouse.history.service import HistoryService
    from lighthouse.history.views import ContextSources, HistoryViews
    from lighthouse.push.service import Notifier, PushConnections
    from lighthouse.push.store import Connections, Feeds, ManagementApi

R = TypeVar("R")
# The asynchronous read models (the projector, fed by the events table's stream). The others are
# written inline, with the appends (see events.inline); the template's stream filter for the
# projector lists exactly the event types these read.
PROJECTIONS: list[Projection] = [AgentDirectoryProjection()]
COUNTERS: list[CounterProjection] = [ElicitationMetricsProjection()]


@dataclass(frozen=True)
class IdempotentCreate:
    """`create` behind Powertools idempotency: (agent, Idempotency-Key) -> the first result, for 24 h."""

    config: Any  # IdempotencyConfig
    create: Callable[..., dict[str, Any]]

    def __call__(self, request: dict[str, Any], lambda_context: Any) -> dict[str, Any]:
        if lambda_context is not None:
            # In-progress records then expire with this invocation, not after a fixed hour.
            self.config.register_lambda_context(lambda_context)
        return self.create(request=request)


class Components:
    """Every part, built once per instance on first use."""

    def __init__(self, settings: Settings, aws: AwsClients, clock: Clock | None = None) -> None:
        self.settings = settings
        self.aws = aws
        self.clock: Clock = clock or SystemClock()

    @classmethod
    def from_environment(cls) -> Components:
        settings = Settings()
        return cls(settings, AwsClients.shared(settings.aws_endpoint_url))

    def client(self, service: str) -> Any:
        return self.aws.client(service)

    # ---- storage ------------------------------------------------------------------------------

    @cached_property
    def master_secret(self) -> Lazy[str]:
        """Read from Secrets Manager on first use: functions that never sign or verify never read it."""
        return Lazy(lambda: resolve_master_secret(self.settings, self.client("secretsmanager")))

    @cached_property
    def events(self) -> EventStore:
        settings = self.settings
        return EventStore.dynamodb(
            self.client("dynamodb"),
            settings.events_table,
            settings.snapshots_table,
            self.clock,
            snapshot_every=settings.snapshot_every,
        )

    @cached_property
    def read_models(self) -> ReadModelStore:
        return ReadModelStore(self.client("dynamodb"), self.settings.read_models_table)

    @cached_property
    def limiter(self) -> TokenBucketLimiter:
        return TokenBucketLimiter(self.client("dynamodb"), self.settings.rate_limits_table, self.clock)

    @cached_property
    def nonces(self) -> NonceStore:
        return NonceStore(self.client("dynamodb"), self.settings.nonces_table)

    @cached_property
    def task_tokens(self) -> TaskTokens:
        return TaskTokens(self.client("dynamodb"), self.settings.task_tokens_table, self.client("stepfunctions"))

    @cached_property
    def memory(self) -> MemoryStore:
        return MemoryStore(self.client("dynamodb"), self.settings.memory_table)

    @cached_property
    def connections(self) -> ConnectionStore:
        return ConnectionStore(self.client("secretsmanager"), self.settings.connection_secret_prefix)

    def poison_sink(self, consumer: str, queue_url: str) -> PoisonSink:
        """One consumer's poison records: its failure queue, or without one only a log line and a metric."""

        send = sqs_sender(self.client("sqs"), queue_url) if queue_url else (lambda body: None)
        return PoisonSink(consumer, send, logger_for(f"lighthouse-{consumer}"))

    # ---- agents and credentials ---------------------------------------------------------------

    @cached_property
    def agents(self) -> AgentService:
        settings = self.settings
        return AgentService(
            events=self.events,
            read_models=self.read_models,
            nonces=self.nonces,
            limiter=self.limiter,
            signer=TokenSigner(self.master_secret.map(session_token_key)),
            master_secret=self.master_secret,
            clock=self.clock,
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

    @cached_property
    def fleet(self) -> FleetService:
        from lighthouse.fleet.broker import Broker, IotCoreBroker, MosquittoBroker
        from lighthouse.fleet.service import FleetService, SourcePolicy
        from lighthouse.fleet.store import command_states, fleet_states

        settings, table = self.settings, self.settings.read_models_table
        broker: Broker
        if settings.fleet_broker == "iot-core":
            endpoint = settings.iot_data_endpoint
            broker = IotCoreBroker(functools.cache(lambda: _iot_data_client(endpoint)))
        else:
            broker = MosquittoBroker(settings.mqtt_url, lambda: mqtt_platform_password(self.master_secret.get()))
        s3 = _presigning_s3(settings.presign_endpoint_url) if settings.presign_endpoint_url else self.client("s3")
        machine = settings.fleet_command_state_machine_arn

        def start_deadline(request_id: str, expires_at: float) -> None:
            if machine:
                self.task_tokens.start(machine, request_id, {"request_id": request_id, "expires_at": _iso(expires_at)})

        return FleetService(
            events=self.events,
            read_models=self.read_models,
            agents=self.agents,
            fleet=fleet_states(self.client("dynamodb"), table, self.events),
            commands=command_states(self.client("dynamodb"), table, self.events),
            broker=broker,
            passwords=TokenSigner(self.master_secret.map(mqtt_password_key)),
            clock=self.clock,
            mqtt_url=settings.mqtt_url,
            sources=SourcePolicy(
                settings.fleet_source_prefixes,
                settings.workspace_bucket,
                lambda method, bucket, key, seconds: s3.generate_presigned_url(
                    method, Params={"Bucket": bucket, "Key": key}, ExpiresIn=seconds
                ),
            ),
            credential_ttl_seconds=settings.mqtt_credential_ttl_seconds,
            authorizer_name=settings.iot_authorizer_name if settings.fleet_broker == "iot-core" else "",
            # Twice the heartbeat interval: the presence sweep's cutoff (three) is never reached.
            status_every_seconds=2 * settings.heartbeat_interval_seconds,
            start_deadline=start_deadline,
        )

    @cached_property
    def fleet_rollouts(self) -> RolloutService:
        from lighthouse.fleet.rollout_service import RolloutService
        from lighthouse.fleet.store import command_states, rollout_states

        settings, table, dynamodb = self.settings, self.settings.read_models_table, self.client("dynamodb")
        machine = settings.fleet_rollout_state_machine_arn

        def start_execution(rollout_id: str) -> None:
            if not machine:
                raise ConfigurationError(
                    "no rollout state machine is configured (LIGHTHOUSE_FLEET_ROLLOUT_STATE_MACHINE_ARN)"
                )
            self.task_tokens.start(machine, rollout_id, {"rollout_id": rollout_id})

        return RolloutService(
            events=self.events,
            rollouts_state=rollout_states(dynamodb, table, self.events),
            commands=command_states(dynamodb, table, self.events),
            fleet=self.fleet,
            clock=self.clock,
            start_execution=start_execution,
        )

    @cached_property
    def history(self) -> HistoryService:
        from lighthouse.history.blobs import BlobStore
        from lighthouse.history.service import HistoryLimits, HistoryService
        from lighthouse.history.store import HistoryIndex

        settings = self.settings
        return HistoryService(
            events=self.events,
            index=HistoryIndex(self.client("dynamodb"), settings.read_models_table),
            blobs=BlobStore(self.client("s3"), settings.history_bucket),
            clock=self.clock,
            projects_of=self.agents.projects_of,
            limits=HistoryLimits(
                settings.history_max_file_bytes, settings.history_max_files, settings.history_snapshot_every
            ),
            nonces=self.nonces,
        )

    @cached_property
    def history_views(self) -> HistoryViews:
        from lighthouse.history.views import HistoryViews

        return HistoryViews(self.history, self._context_sources())

    def _context_sources(self) -> ContextSources:
        from lighthouse.elicitation.store import asked_model, pending_model
        from lighthouse.history.views import ContextSources
        from lighthouse.pipelines.store import open_tasks_model
        from lighthouse.runs.store import BY_TIME
        from lighthouse.validation.logic import audit_model

        dynamodb, table = self.client("dynamodb"), self.settings.read_models_table

        def newest(model: str, limit: int = 100) -> list[dict[str, Any]]:
            page = dynamodb.query(
                TableName=table, KeyConditionExpression="#m = :m", ExpressionAttributeNames={"#m": "model"},
                ExpressionAttributeValues={":m": {"S": model}}, ScanIndexForward=False, Limit=limit,
            )  # fmt: skip
            return [json.loads(item["doc"]["S"]) for item in page.get("Items", []) if "doc" in item]

        def running_runs(agent: str) -> list[dict[str, Any]]:
            recent = newest(BY_TIME, 200)
            return [r for r in recent if r.get("launched_by") == agent and r.get("status") in ("pending", "running")]

        return ContextSources(
            to_answer=lambda agent: newest(pending_model(agent)),
            asked=lambda agent: newest(asked_model(agent)),
            decisions=lambda agent, limit: newest(audit_model(agent), limit),
            tasks=lambda agent: newest(open_tasks_model(agent)),
            runs=running_runs,
        )

    @cached_property
    def flags(self) -> FlagsService:
        """Flags from AppConfig (AWS) or the event store (emulators); see lighthouse.flags.store."""
        from lighthouse.flags.service import FlagsService
        from lighthouse.flags.store import AppConfigPublisher, AppConfigTarget, EventStoreFlags, FlagsLog

        settings = self.settings
        log = FlagsLog(self.events)
        if settings.flags_store == "events":
            store: Any = EventStoreFlags(log, settings.flags_cache_seconds)
            return FlagsService(log, store, self.clock, store_name="events", cache_seconds=settings.flags_cache_seconds)
        from aws_lambda_powertools.utilities.feature_flags import AppConfigStore

        target = AppConfigTarget(
            settings.flags_application,
            settings.flags_environment,
            settings.flags_profile,
            settings.flags_deployment_strategy,
        )
        store = AppConfigStore(
            environment=target.environment,
            application=target.application,
            name=target.profile,
            max_age=max(1, round(settings.flags_cache_seconds)),
            boto3_client=self.client("appconfigdata"),
        )
        return FlagsService(
            log,
            store,
            self.clock,
            store_name="appconfig",
            cache_seconds=settings.flags_cache_seconds,
            publisher=AppConfigPublisher(self.client("appconfig"), target),
        )

    # ---- real-time delivery ---------------------------------------------------------------------

    @cached_property
    def push_parts(self) -> tuple[Connections, Feeds, ManagementApi]:
        from lighthouse.push.store import Connections, Feeds, ManagementApi

        settings = self.settings
        endpoint = settings.websocket_management_url
        api, stage = settings.websocket_api_id, settings.websocket_stage
        emulator = settings.aws_endpoint_url or settings.emulator_endpoint_url
        if not endpoint and emulator:  # LocalStack-style emulators route @connections by path
            endpoint = f"{emulator.rstrip('/')}/_aws/execute-api/{api}/{stage}"
        if not endpoint:
            region = self.aws.region
            endpoint = f"https://{api}.execute-api.{region}.amazonaws.com/{stage}"
        management = self.aws.client_at("apigatewaymanagementapi", endpoint)
        return (
            Connections(self.client("dynamodb"), settings.connections_table),
            Feeds(self.events, self.nonces),
            ManagementApi(management),
        )

    @cached_property
    def push_connections(self) -> PushConnections:
        from lighthouse.push.service import PushConnections

        connections, feeds, management = self.push_parts
        return PushConnections(
            self.agents.authenticate,
            connections,
            feeds,
            management,
            self.flags.enabled,
            self.clock,
            self.settings.websocket_connection_ttl_seconds,
            charge=self.api_guards.charge,
        )

    @cached_property
    def notifier(self) -> Notifier:
        from lighthouse.push.service import Notifier

        connections, feeds, management = self.push_parts
        return Notifier(self.events, feeds, connections, management, self.flags.enabled, self.clock)

    @cached_property
    def hook_tokens(self) -> HookTokens:
        return HookTokens(
            TokenSigner(self.master_secret.map(hook_token_key)),
            self.events,
            self.clock,
            self.settings.hook_token_ttl_seconds,
        )

    @cached_property
    def api_guards(self) -> Guards:
        """What every API route checks before its view: the caller, its request budget, its open waits."""
        settings = self.settings
        maximum = settings.long_poll_recheck_seconds
        # The notifier is the process's own wake-up signal between a write and the waiters on it.
        notifier.pacing = Pacing(first=min(settings.long_poll_first_recheck_seconds, maximum), maximum=maximum)
        agents, limiter = self.agents, self.limiter
        general = Limit(settings.requests_per_minute, settings.request_burst)
        leases = WaitLeases(
            self.client("dynamodb"),
            settings.rate_limits_table,
            self.clock,
            WaitCaps(per_agent=settings.max_waits_per_agent, total=settings.max_open_waits),
        )

        def charge(principal: Principal) -> None:
            limiter.consume(f"requests#{principal.agent_id}", general)

        return Guards(
            authenticate=agents.authenticate,
            charge=charge,
            waiting=lambda principal, seconds: _lazy_lease(leases, principal.agent_id, seconds),
            max_body_ceiling=settings.max_body_bytes,
        )

    def health_checks(self) -> dict[str, Callable[[], None]]:
        settings = self.settings
        dynamodb = self.client("dynamodb")
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
                self.client("sqs").get_queue_attributes,
                QueueUrl=settings.presence_queue_url,
                AttributeNames=["QueueArn"],
            )
        master_secret = self.master_secret

        def read_master_secret() -> None:
            master_secret.get()

        checks["secrets:master"] = read_master_secret
        return checks

    # ---- elicitation --------------------------------------------------------------------------

    @cached_property
    def elicitations(self) -> ElicitationService:
        settings = self.settings
        return ElicitationService(
            events=self.events,
            read_models=self.read_models,
            records=ElicitationRecords(self.client("dynamodb"), settings.read_models_table, settings.events_table),
            nonces=self.nonces,
            limiter=self.limiter,
            task_tokens=self.task_tokens,
            state_machine_arn=settings.elicitation_state_machine_arn,
            master_secret=self.master_secret,
            clock=self.clock,
            limits=ElicitationLimits(
                creates=Limit(settings.elicitation_creates_per_minute, settings.elicitation_burst),
                responses=Limit(settings.elicitation_responses_per_minute, settings.elicitation_burst),
            ),
        )

    @cached_property
    def idempotent_create(self) -> IdempotentCreate:
        """A reused key with a different body is refused (the body is part of the validation hash)."""
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        config = IdempotencyConfig(
            event_key_jmespath="[agent, key]",
            payload_validation_jmespath="body",
            expires_after_seconds=86_400,
            raise_on_no_idempotency_key=True,
        )
        persistence = DynamoDBPersistenceLayer(
            table_name=self.settings.idempotency_table, boto3_client=self.client("dynamodb")
        )
        elicitations = self.elicitations

        def create(request: dict[str, Any]) -> dict[str, Any]:
            principal = Principal(**request["principal"])
            body = CreateElicitation.model_validate(request["body"])
            return elicitations.create(principal, body).model_dump(mode="json")

        wrapped = idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config)
        return IdempotentCreate(config, wrapped(create))

    # ---- validation ---------------------------------------------------------------------------

    @cached_property
    def policies(self) -> PolicyStore:
        return PolicyStore(self.events, self.clock, self.settings.validation_policy_refresh_seconds)

    @cached_property
    def gate(self) -> DecisionGate:
        from lighthouse.flags.logic import GATE_DENY_BLOCKING_RULES, GATE_DENY_OUTSIDE_ROOTS
        from lighthouse.validation.gate import BLOCKING_RULE, OUTSIDE_ROOTS

        flag_of = {BLOCKING_RULE: GATE_DENY_BLOCKING_RULES, OUTSIDE_ROOTS: GATE_DENY_OUTSIDE_ROOTS}

        def enforces(agent_id: str, role: str, deny_class: str) -> bool:
            return self.flags.enabled(flag_of[deny_class], agent_id, role)

        return DecisionGate(self.policies.engine, allowed_roots=self.settings.allowed_roots, enforces=enforces)

    def experts_available(self) -> list[str]:
        """Experts that are online (heartbeating), in a stable order: asking a silent one only burns the timeout."""
        experts: list[AgentView] = []
        token: str | None = None
        while True:
            page = self.agents.list(200, token)
            experts.extend(a for a in page.agents if a.role == "expert" and a.presence == "online")
            token = page.next_token
            if not token:
                break
        experts.sort(key=lambda agent: agent.agent_id)
        return [agent.agent_id for agent in experts]

    def llm_expert(self) -> LlmExpert | None:
        settings = self.settings
        if not settings.validation_llm_provider:
            return None
        return LlmExpert(
            LlmSettings(
                provider=settings.validation_llm_provider,
                model=settings.validation_llm_model,
                api_key=resolve_llm_api_key(settings, self.client("secretsmanager")),
                base_url=settings.validation_llm_base_url,
                timeout_seconds=settings.validation_llm_timeout_seconds,
            ),
            bedrock_client=self.client("bedrock-runtime") if settings.validation_llm_provider == "bedrock" else None,
            record_call=lambda provider, model, tokens_in, tokens_out, latency: self.llm_ledger.record_call(
                "validation", provider, model, tokens_in, tokens_out, latency, Who(agent_id="llm-expert")
            ),
        )

    @cached_property
    def validations(self) -> ValidationService:
        settings = self.settings
        tokens = self.task_tokens
        return ValidationService(
            events=self.events,
            read_models=self.read_models,
            audit=ValidationAudit(self.client("dynamodb"), settings.read_models_table, self.events),
            limiter=self.limiter,
            gate=self.gate,
            policies=self.policies,
            elicitations=self.elicitations,
            experts_available=self.experts_available,
            start_round=lambda name, payload: tokens.start(settings.validation_state_machine_arn, name, payload),
            task_tokens=tokens,
            master_secret=self.master_secret,
            clock=self.clock,
            limit=Limit(settings.validations_per_minute, settings.validation_burst),
            experts=ExpertPolicy(
                panel_size=settings.validation_expert_count,
                timeout_seconds=settings.validation_expert_timeout_seconds,
                hook_wait_seconds=settings.validation_hook_wait_seconds,
            ),
            llm=self.llm_expert(),
        )

    # ---- pipelines ----------------------------------------------------------------------------

    @cached_property
    def pipelines(self) -> PipelineRegistry:
        settings = self.settings
        return PipelineRegistry(
            events=self.events,
            stepfunctions=self.client("stepfunctions"),
            engine=Engine(
                stage_runner_arn=settings.pipeline_stage_function_arn,
                role_arn=settings.pipeline_role_arn,
                machine_prefix=settings.pipeline_machine_prefix,
                workspace_bucket=settings.workspace_bucket,
            ),
            clock=self.clock,
        )

    @cached_property
    def task_states(self) -> InlineState[TaskState]:
        return task_states(self.client("dynamodb"), self.settings.read_models_table, self.events)

    @cached_property
    def tasks(self) -> TaskService:
        return TaskService(
            events=self.events,
            tasks=self.task_states,
            registry=self.pipelines,
            stepfunctions=self.client("stepfunctions"),
            memory=self.memory,
            clock=self.clock,
            projects_of=self.agents.projects_of,
        )

    @cached_property
    def stage_runner(self) -> StageRunner:
        return StageRunner(
            events=self.events,
            tasks=self.task_states,
            registry=self.pipelines,
            s3=self.client("s3"),
            memory=self.memory,
            workspace_bucket=self.settings.workspace_bucket,
            clock=self.clock,
            connections=self.connections,
            bedrock_client=lambda: self.client("bedrock-runtime"),
            history=Lazy(lambda: self.history),
        )

    # ---- runs ---------------------------------------------------------------------------------

    @cached_property
    def llm_ledger(self) -> LlmLedger:
        from lighthouse.runs.ledger import LlmLedger, Prices

        settings = self.settings
        prices = Prices.from_json(settings.llm_price_overrides)
        return LlmLedger(self.client("dynamodb"), settings.read_models_table, prices, self.clock.now)

    @cached_property
    def run_states(self) -> RunStates:
        from lighthouse.runs.store import RunStates

        return RunStates(self.client("dynamodb"), self.settings.read_models_table, self.events)

    def _run_storage(self) -> Storage:
        """S3 for run data; URLs presigned for agents on the address they reach (the emulator's locally)."""
        from lighthouse.runs.jobs import Storage

        settings = self.settings
        s3 = _presigning_s3(settings.presign_endpoint_url) if settings.presign_endpoint_url else self.client("s3")
        bucket = settings.workspace_bucket
        return Storage(
            self.client("s3"),
            bucket,
            lambda method, key, seconds: str(
                s3.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key}, ExpiresIn=seconds)
            ),
        )

    @cached_property
    def runs(self) -> RunService:
        from lighthouse.runs.inventory import InventoryReader
        from lighthouse.runs.models import LlmChoice
        from lighthouse.runs.service import RunService
        from lighthouse.runs.settings import configured_directives, schedules
        from lighthouse.runs.store import allowlist_states, directive_states

        settings, dynamodb, table = self.settings, self.client("dynamodb"), self.settings.read_models_table
        machine = settings.runs_state_machine_arn
        storage = self._run_storage()

        def start_execution(run_id: str) -> None:
            if not machine:
                raise ConfigurationError("no runs state machine is configured (LIGHTHOUSE_RUNS_STATE_MACHINE_ARN)")
            self.task_tokens.start(machine, run_id, {"run_id": run_id})

        return RunService(
            events=self.events,
            read_models=self.read_models,
            runs=self.run_states,
            directives=directive_states(dynamodb, table, self.events),
            allowlist=allowlist_states(dynamodb, table, self.events),
            inventory=InventoryReader(self.read_models),
            ledger=self.llm_ledger,
            clock=self.clock,
            start_execution=start_execution,
            presign_get=lambda key, seconds: storage.presign("get_object", key, seconds),
            configured_directives=configured_directives(settings.run_directives),
            schedules=schedules(settings.run_schedules),
            default_llm=LlmChoice(
                provider=settings.run_llm_provider,
                model=settings.run_llm_model,
                connection=settings.run_llm_connection or None,
            ),
        )

    @cached_property
    def run_jobs(self) -> RunJobRunner:
        from lighthouse.fleet.store import command_states
        from lighthouse.runs.inventory import InventoryReader
        from lighthouse.runs.jobs import RunJobRunner
        from lighthouse.runs.notify import finished_run, notifier_of
        from lighthouse.runs.store import allowlist_states

        settings, dynamodb, table = self.settings, self.client("dynamodb"), self.settings.read_models_table
        return RunJobRunner(
            events=self.events,
            runs=self.run_states,
            allowlist=allowlist_states(dynamodb, table, self.events),
            fleet=lambda: self.fleet,
            commands=command_states(dynamodb, table, self.events),
            inventory=InventoryReader(self.read_models),
            storage=self._run_storage(),
            ledger=self.llm_ledger,
            connections=self.connections,
            clock=self.clock,
            state_machine_arn=settings.runs_state_machine_arn,
            collect_ttl_seconds=settings.run_collect_ttl_seconds,
            on_finished=finished_run(
                self.read_models,
                notifier_of(self.client("sqs"), settings.run_notify_queue_url),
                emit_metrics=settings.mode == "aws",
            ),
            bedrock_client=lambda: self.client("bedrock-runtime"),
        )

    # ---- read models --------------------------------------------------------------------------

    @cached_property
    def projector(self) -> Projector:
        return Projector(self.events, self.read_models, PROJECTIONS, counters=COUNTERS)


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


def lazy_root(compose: Callable[[Components], R]) -> Callable[[], R]:
    """A function's root, composed from the environment on its first invocation (not at import, so a
    module can be loaded to read its routes without any setting present)."""
    root: Lazy[R] = Lazy(lambda: compose(Components.from_environment()))
    return root.get


def _iso(epoch: float) -> str:
    """A Step Functions timestamp (a Wait state's TimestampPath)."""
    import datetime

    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iot_data_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("iot-data", endpoint_url=endpoint or None)


def _presigning_s3(endpoint: str) -> Any:
    """Presigns only (no request is sent): URLs on the emulator's address, path-style."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
