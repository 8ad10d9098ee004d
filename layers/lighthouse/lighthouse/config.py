"""Settings, parsed from the environment by each function's composition root (the only place that reads it)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIGHTHOUSE_", extra="ignore")

    mode: Literal["aws", "local"] = "aws"
    events_table: str = "lighthouse-events"
    snapshots_table: str = "lighthouse-snapshots"
    read_models_table: str = "lighthouse-read-models"
    nonces_table: str = "lighthouse-nonces"
    rate_limits_table: str = "lighthouse-rate-limits"
    idempotency_table: str = "lighthouse-idempotency"
    task_tokens_table: str = "lighthouse-task-tokens"
    elicitation_state_machine_arn: str = ""
    elicitation_creates_per_minute: int = Field(default=10, ge=1)
    elicitation_responses_per_minute: int = Field(default=20, ge=1)
    elicitation_burst: int = Field(default=3, ge=1)
    presence_queue_url: str = ""
    # Where each consumer sets aside records it can never process (the template's OnFailure / DLQ).
    projector_failure_queue_url: str = ""
    dispatch_failure_queue_url: str = ""
    presence_dead_letter_queue_url: str = ""
    master_secret_arn: str = ""
    # Only for local runs and tests: the secret itself. AWS deployments use master_secret_arn.
    master_secret: str = Field(default="", repr=False)
    snapshot_every: int = Field(default=1000, ge=1)
    token_ttl_seconds: int = Field(default=3600, ge=60, le=86400)
    clock_skew_seconds: int = Field(default=300, ge=1)
    heartbeat_interval_seconds: int = Field(default=30, ge=1)
    # A ceiling on every route's own body limit (see the README's route table).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    sessions_per_minute: int = Field(default=30, ge=1)
    heartbeats_per_minute: int = Field(default=120, ge=1)
    requests_per_minute: int = Field(default=600, ge=1)
    request_burst: int = Field(default=100, ge=1)
    rate_limit_burst: int = Field(default=20, ge=1)
    # Failed sign-ins (bad signature or unknown agent), charged only after the check fails.
    signin_failures_per_minute_per_source: int = Field(default=20, ge=1)
    signin_failures_per_minute_per_agent: int = Field(default=60, ge=1)
    # Long-polls (`?wait=N`) open at once, per agent and in all.
    max_waits_per_agent: int = Field(default=4, ge=1)
    max_open_waits: int = Field(default=256, ge=1)
    # A long-poll's storage re-reads: the first pause, doubling up to the longest (lighthouse.notify.Pacing).
    long_poll_first_recheck_seconds: float = Field(default=0.02, gt=0, le=20)
    long_poll_recheck_seconds: float = Field(default=1.0, gt=0, le=20)
    aws_endpoint_url: str = ""
    # ---- validation gate
    validation_state_machine_arn: str = ""
    validations_per_minute: int = Field(default=600, ge=1)
    validation_burst: int = Field(default=100, ge=1)
    # Colon-separated absolute paths; empty: each request's working directory is its root.
    validation_allowed_roots: str = ""
    validation_expert_count: int = Field(default=3, ge=2, le=15)
    validation_expert_timeout_seconds: int = Field(default=30, ge=1, le=3600)
    validation_hook_wait_seconds: float = Field(default=10.0, ge=0, le=20)
    validation_policy_refresh_seconds: float = Field(default=5.0, ge=0)
    hook_token_ttl_seconds: int = Field(default=30 * 86400, ge=60)
    validation_llm_provider: Literal["", "openai", "anthropic", "bedrock"] = ""
    validation_llm_model: str = ""
    validation_llm_base_url: str = ""
    validation_llm_api_key_secret_arn: str = ""
    validation_llm_api_key: str = Field(default="", repr=False)
    validation_llm_timeout_seconds: float = Field(default=20.0, gt=0, le=60)

    # ---- pipelines
    memory_table: str = "lighthouse-memory"
    workspace_bucket: str = "lighthouse-workspaces"
    pipeline_stage_function_arn: str = ""
    pipeline_role_arn: str = ""
    pipeline_machine_prefix: str = "lighthouse-pipeline"
    # Named LLM connections are the Secrets Manager secrets `<prefix>/<name>`.
    connection_secret_prefix: str = "lighthouse/connections"  # noqa: S105 - a name prefix, not a secret

    # ---- fleet
    # "mosquitto": the broker at mqtt_url, accounts through its dynamic-security plugin (local);
    # "iot-core": AWS IoT Core (commands through iot-data, accounts checked by the custom authorizer).
    fleet_broker: Literal["", "mosquitto", "iot-core"] = ""
    mqtt_url: str = ""
    iot_data_endpoint: str = ""
    # The custom authorizer agents name in their MQTT username (IoT Core only).
    iot_authorizer_name: str = ""
    fleet_ingest_dead_letter_queue_url: str = ""
    fleet_command_state_machine_arn: str = ""
    fleet_rollout_state_machine_arn: str = ""
    # Comma-separated URL prefixes install sources may start with (besides the platform's bucket).
    fleet_allowed_sources: str = ""
    # The S3 endpoint agents download presigned component URLs from (the emulator's; empty on AWS).
    presign_endpoint_url: str = ""
    mqtt_credential_ttl_seconds: int = Field(default=86400, ge=300, le=30 * 86400)

    # ---- history
    history_bucket: str = "lighthouse-history"
    history_max_file_bytes: int = Field(default=1024 * 1024, ge=1024, le=4 * 1024 * 1024)
    history_max_files: int = Field(default=200, ge=1, le=1000)
    # A full copy of a file's content every N versions (and deltas on it between): reading any
    # version is then at most two blob reads.
    history_snapshot_every: int = Field(default=16, ge=1, le=1000)

    # ---- runs
    runs_state_machine_arn: str = ""
    run_notify_queue_url: str = ""
    run_notify_dead_letter_queue_url: str = ""
    # {"log_triage": "0 * * * *"}: job templates' cron schedules (UTC), launched by the scheduler tick.
    run_schedules: str = ""
    # [{"directive_id", "type": "D2"|"D3", "name", "goals", ...}]: the organisation's and projects' directives.
    run_directives: str = ""
    # {"model": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}: prices that replace genai-prices'.
    llm_price_overrides: str = ""
    # What a run's analysis asks unless the launch names a model: "scripted" works offline.
    run_llm_provider: Literal["scripted", "openai", "anthropic", "ollama", "bedrock"] = "scripted"
    run_llm_model: str = "scripted-analyst"
    run_llm_connection: str = ""
    run_collect_ttl_seconds: int = Field(default=300, ge=10, le=3600)
    # The MCP function calls the API function directly (see lighthouse.lambda_transport).
    api_function_name: str = ""
    # The MCP endpoint's public URL (its protected-resource metadata names it).
    mcp_url: str = ""
    # ---- feature flags
    # "appconfig": functions read AppConfig (Powertools AppConfigStore) and PUT /flags publishes to it;
    # "events": they read the latest FLAGS_CHANGED from the event store (the embedded cloud: moto has
    # no AppConfig data plane). Either way every change is a FLAGS_CHANGED event.
    flags_store: Literal["appconfig", "events"] = "events"
    # ---- console: the bucket its built files are served from (prefix console/)
    console_bucket: str = "lighthouse-console"
    # A function reads the document again after this many seconds (each process keeps its own copy).
    flags_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    flags_application: str = ""
    flags_environment: str = ""
    flags_profile: str = ""
    flags_deployment_strategy: str = ""

    # ---- real-time delivery (WebSocket API)
    connections_table: str = "lighthouse-connections"
    websocket_api_id: str = ""
    websocket_stage: str = "live"
    # Where functions post to connections (@connections); empty: the API's own execute-api URL on AWS.
    websocket_management_url: str = ""
    websocket_connection_ttl_seconds: int = Field(default=7200, ge=60, le=86400)
    # Set by LocalStack-style emulators for their functions (every boto3 client goes there): the
    # @connections endpoint is then the emulator's path form, not the execute-api host.
    emulator_endpoint_url: str = Field(default="", validation_alias="AWS_ENDPOINT_URL")

    # Redact secrets and IP addresses from every log line (turning it off logs a warning at start).
    log_redaction: bool = True

    @property
    def fleet_source_prefixes(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.fleet_allowed_sources.split(",") if p.strip())

    @property
    def allowed_roots(self) -> list[str]:
        return [root for root in self.validation_allowed_roots.split(":") if root]
