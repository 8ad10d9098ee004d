"""LocalCloud: one process holding the emulated AWS account, the runtime and every event source."""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from lighthouse_tools.console_assets import ConsoleNotBuilt
from lighthouse_tools.console_assets import publish as publish_console
from lighthouse_tools.layer import verified_layer
from lighthouse_tools.localcloud import aws_pipe, calls, moto_fixes, speedups
from lighthouse_tools.localcloud.atomicity import (
    install_emulator_hooks,
    queue_writes,
    table_of_stream,
    table_writes,
)
from lighthouse_tools.localcloud.durable.persistence import Persistence
from lighthouse_tools.localcloud.durable.recovery import resume_executions
from lighthouse_tools.localcloud.provision import Provisioner, Stack
from lighthouse_tools.localcloud.runtime import FunctionRuntime
from lighthouse_tools.localcloud.servers import ApiGateway, FunctionUrl, ServerThread
from lighthouse_tools.localcloud.sources import Poller, ScheduleRunner, SqsPoller, StreamPoller
from lighthouse_tools.localcloud.websocket import LocalWebSocketGateway
from lighthouse_tools.localcloud.websocket import bridge as management_bridge
from lighthouse_tools.template import TEMPLATE_PATH, TemplateError, load_template

if TYPE_CHECKING:
    from lighthouse.composition import Components

REGION = "us-east-1"
ACCOUNT = "123456789012"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "lighthouse-local",
    "AWS_SECRET_ACCESS_KEY": "lighthouse-local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # Account-based endpoints (<account>.streams-ddb...) are not routed by the emulator.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


# Resumed executions are started while fewer Step Functions tasks than this are running.
RESUME_WINDOW = 8


@dataclass
class LocalCloudOptions:
    host: str = "127.0.0.1"
    aws_port: int = 4577
    api_port: int = 8787
    websocket_port: int = 0  # 0: a free port (the state file and `websocket_url` name it)
    template_path: Path = TEMPLATE_PATH
    stack_name: str = "lighthouse"
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    # Local-only knob for tests: scales schedules and queue visibility timeouts (1.0 = as written).
    time_scale: float = 1.0
    start_schedules: bool = True
    # Per function, like Lambda's default account concurrency; long-polling requests each hold one.
    max_concurrency: int = 1000
    # Function code in this many worker processes (workers.py); 0 runs it in this process, where
    # tests can patch it and see its state.
    worker_processes: int = 0
    # Build the Lambda layer from its requirements and import every handler from it alone before
    # serving (cached by hash), so a dependency missing from the layer fails here, not on Lambda.
    verify_layer: bool = True
    # Keep the state in this directory (durable/): restored at start, every acknowledged change on
    # disk. None keeps it in memory only (the integration tests' clouds).
    data_dir: Path | None = None
    # Start with an empty data directory (its contents are deleted).
    fresh: bool = False
    # fsync each group commit; off only for benchmarks that measure what durability costs.
    fsync: bool = True
    # The fleet's MQTT broker: start mosquitto (True), or use the broker at mqtt_url (whose
    # dynamic-security plugin has the platform account; see README), or none (mqtt False).
    mqtt: bool = True
    mqtt_url: str | None = None
    mqtt_port: int = 0  # 0: a free port


class _LambdaInvokeBridge:
    """Routes the emulator's Lambda Invoke (from Step Functions Task states, or any client) to the
    local runtime; moto would otherwise need Docker to run the function."""

    def __init__(self) -> None:
        self.runtime: FunctionRuntime | None = None
        self._original: Any = None

    def install(self, runtime: FunctionRuntime) -> None:
        from moto.awslambda.models import LambdaBackend

        self.runtime = runtime
        if self._original is not None:
            return
        self._original = LambdaBackend.invoke
        bridge = self

        def invoke(
            backend: Any, function_name: str, qualifier: str, body: Any, headers: Any, response_headers: Any
        ) -> Any:
            runtime = bridge.runtime
            logical_id = runtime.resolve(function_name) if runtime else None
            if runtime is None or logical_id is None:
                return bridge._original(backend, function_name, qualifier, body, headers, response_headers)
            payload, function_error = runtime.invoke_for_lambda_api(logical_id, body)
            if function_error:
                response_headers["x-amz-function-error"] = function_error
            return payload

        LambdaBackend.invoke = invoke  # type: ignore[method-assign, assignment]

    def uninstall(self) -> None:
        from moto.awslambda.models import LambdaBackend

        if self._original is not None:
            LambdaBackend.invoke = self._original  # type: ignore[method-assign]
            self._original = None
        self.runtime = None


_bridge = _LambdaInvokeBridge()


def _forget_shard_iterator(iterator: str) -> None:
    """moto keeps every shard iterator it hands out, forever; a poller asks for one per poll, so the
    table (and the garbage collector's work) would grow without bound. A used iterator is dropped."""
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    dynamodbstreams_backends[ACCOUNT][REGION].shard_iterators.pop(iterator, None)


class LocalCloud:
    """Start with `start()` (or as a context manager); `stop()` shuts every thread down."""

    def __init__(self, options: LocalCloudOptions | None = None) -> None:
        self.options = options or LocalCloudOptions()
        self.stack: Stack | None = None
        self.runtime: FunctionRuntime | None = None
        self.aws_server: ServerThread | None = None
        self.api_server: ServerThread | None = None
        self.pollers: list[Poller] = []
        self._stop = threading.Event()
        self._mock: Any = None
        self._saved_env: dict[str, str | None] = {}
        self.started_in_seconds = 0.0
        self._components: Components | None = None
        self.persistence: Persistence | None = None
        self.broker: Any = None  # LocalBroker
        self.mqtt_url: str | None = None
        self.function_urls: dict[str, ServerThread] = {}
        self.websocket: LocalWebSocketGateway | None = None
        self.topic_rules: Any = None  # TopicRuleRunner
        self.resumed_executions: list[str] = []
        self.skipped_recovery = 0  # interrupted executions not resumed (flag durable_recovery off)
        self._recovery: threading.Thread | None = None
        # Every AWS call, Lambda invocation and state transition the emulator serves (see calls.py).
        self.calls = calls.counter

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> LocalCloud:
        began = time.perf_counter()
        options = self.options
        if options.data_dir is not None:
            # First, so a directory in use (or from a newer Lighthouse) is refused before anything runs.
            self.persistence = Persistence(options.data_dir, ACCOUNT, REGION, fsync=options.fsync).open(options.fresh)
        from moto import mock_aws
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._set_env(FAKE_CREDENTIALS)
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        install_emulator_hooks()
        speedups.install()
        moto_fixes.install()
        calls.install()
        # Filled once the stack is provisioned: what the cost model needs to know of the functions.
        described: dict[str, Any] = {}
        self.aws_server = ServerThread(
            calls.serving_counts(DomainDispatcherApplication(create_backend_app), described),
            options.host,
            options.aws_port,
            "aws-endpoint",
        )
        self.aws_server.start()
        self._set_env({"MOTO_PORT": str(self.aws_server.port)})
        clients = {name: self.client(name) for name in ("dynamodb", "sqs", "secretsmanager", "s3", "stepfunctions")}
        self.stack = Provisioner(
            load_template(options.template_path),
            clients,
            stack_name=options.stack_name,
            region=REGION,
            account=ACCOUNT,
            parameter_overrides=options.parameter_overrides,
            time_scale=options.time_scale,
        ).provision()
        if options.verify_layer:
            verified_layer(
                {
                    spec.logical_id: (spec.code_dir, spec.handler.rpartition(".")[0])
                    for spec in self.stack.functions.values()
                }
            )
        self._plan_mqtt()
        described["memory_mb"] = {spec.logical_id: spec.memory_mb for spec in self.stack.functions.values()}
        described["api_function"] = self.stack.api_function().logical_id
        self._set_env(self.function_environment())
        # The worker processes boot (imports, mostly) while this process restores the data directory.
        aws_pipe.restored.clear()
        api = self.stack.api_function()
        try:
            self.runtime = self._runtime()
            self.runtime.warm(api.logical_id)
            interrupted = self._restore()
        finally:
            aws_pipe.restored.set()
        # After the restore: a data directory brings back its own master secret.
        self._start_mqtt()
        _bridge.install(self.runtime)
        self._publish_console()
        self._start_front_ends()
        self._start_sources()
        self.started_in_seconds = time.perf_counter() - began
        self._start_recovery(interrupted)
        return self

    def _publish_console(self) -> None:
        """The built console into its bucket, where ConsoleFunction serves it from (as on AWS)."""
        assert self.stack is not None
        bucket = self.stack.resolver.physical_ids.get("ConsoleBucket")
        if bucket is None:
            return
        try:
            publish_console(self.client("s3"), bucket)
        except ConsoleNotBuilt as error:
            logging.getLogger("lighthouse.localcloud").warning("the console is not served: %s", error)

    @property
    def console_url(self) -> str | None:
        assert self.stack is not None
        if "ConsoleBucket" not in self.stack.resolver.physical_ids:
            return None
        return f"{self.api_url}/console"

    def _start_front_ends(self) -> None:
        """The API, the WebSocket API and the function URLs, each on a port of its own."""
        assert self.stack is not None
        assert self.runtime is not None
        options = self.options
        gateway = ApiGateway(self.runtime, self.stack.api_routes)
        self.api_server = ServerThread(gateway, options.host, options.api_port, "api")
        self.api_server.start()
        if self.stack.websocket is not None:
            self.websocket = LocalWebSocketGateway(
                self.runtime, self.stack.websocket, options.host, options.websocket_port
            ).start()
            management_bridge.install(self.websocket)
        for spec in self.stack.functions.values():
            if spec.function_url:
                server = ServerThread(FunctionUrl(self.runtime, spec.logical_id), options.host, 0, spec.logical_id)
                server.start()
                self.function_urls[spec.logical_id] = server

    def _start_recovery(self, interrupted: list[dict[str, Any]]) -> None:
        """Resume the executions the restart interrupted, in the background (flag durable_recovery)."""
        if not interrupted:
            return
        if not self._recovery_enabled():
            self.skipped_recovery = len(interrupted)
            return
        self._recovery = threading.Thread(
            target=self._resume, args=(interrupted,), name="resume-executions", daemon=True
        )
        self._recovery.start()

    def _restore(self) -> list[dict[str, Any]]:
        """Put the data directory's state back into the freshly provisioned emulator, then journal."""
        if self.persistence is None:
            return []
        assert self.stack is not None
        for source in self.stack.stream_sources:
            consumers = self.persistence.restored.consumers.setdefault(table_of_stream(source.stream_arn), [])
            consumers.append(source.function)
        interrupted = self.persistence.restore()
        self.persistence.begin()
        return interrupted

    def _recovery_enabled(self) -> bool:
        """The `durable_recovery` flag (lighthouse.flags): off, interrupted executions stay failed."""
        from lighthouse.flags.logic import DURABLE_RECOVERY

        enabled = self.components().flags.enabled(DURABLE_RECOVERY, "lighthouse-local-cloud", "admin")
        if not enabled:
            logging.getLogger("lighthouse.localcloud").warning(
                "flag %s is off: the executions interrupted by the restart are not resumed", DURABLE_RECOVERY
            )
        return enabled

    def _resume(self, interrupted: list[dict[str, Any]]) -> None:
        assert self.persistence is not None
        backend = self.persistence.codec.backends.stepfunctions
        taken = {e.name for machine in backend.state_machines for e in machine.executions}
        runtime = self.runtime

        def pace() -> None:
            while runtime is not None and runtime.tasks_in_flight >= RESUME_WINDOW and not self._stop.is_set():
                time.sleep(0.005)

        self.resumed_executions = resume_executions(
            self.client("stepfunctions"), interrupted, taken, self.persistence.note_execution_link, pace
        )

    def _runtime(self) -> FunctionRuntime:
        assert self.stack is not None
        options = self.options
        if options.worker_processes <= 0:
            return FunctionRuntime(self.stack.functions, options.max_concurrency)
        from lighthouse_tools.localcloud.workers import WorkerRuntime, worker_environment

        environment = self.function_environment()
        # No endpoint URL: the workers' clients address AWS, and every call is forwarded to this
        # emulator over the worker's pipe (aws_pipe.py) before it could reach the network.
        base = {**FAKE_CREDENTIALS, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        topics = {
            environment["LIGHTHOUSE_EVENTS_TABLE"]: "stream",
            environment["LIGHTHOUSE_READ_MODELS_TABLE"]: "model",
        }
        return WorkerRuntime(
            self.stack.functions, options.max_concurrency, options.worker_processes, worker_environment(base), topics
        )

    def _plan_mqtt(self) -> None:
        """The broker's URL, in the functions' environment before any of them composes."""
        options = self.options
        if not options.mqtt:
            return
        from lighthouse_tools.localcloud.mqtt import LocalBroker

        assert self.stack is not None
        if options.mqtt_url:
            self.mqtt_url = options.mqtt_url
        else:
            directory = options.data_dir / "mqtt" if options.data_dir is not None else None
            self.broker = LocalBroker("", options.host, options.mqtt_port, directory=directory)
            self.mqtt_url = self.broker.url
        for spec in self.stack.functions.values():
            spec.environment["LIGHTHOUSE_FLEET_BROKER"] = "mosquitto"
            spec.environment["LIGHTHOUSE_MQTT_URL"] = self.mqtt_url

    def _start_mqtt(self) -> None:
        """mosquitto (unless the operator runs the broker) and the runner of the template's topic rules."""
        if self.mqtt_url is None:
            return
        from lighthouse.auth.keys import mqtt_platform_password
        from lighthouse_tools.localcloud.mqtt import TopicRule, TopicRuleRunner

        assert self.stack is not None
        password = mqtt_platform_password(self._master_secret())
        if self.broker is not None:
            self.broker.start(password)
        rules = [TopicRule.parse(name, payload) for name, payload in self.stack.topic_rules.items()]
        self.topic_rules = TopicRuleRunner(rules, self.mqtt_url, password, self.client("sqs")).start()

    def _master_secret(self) -> str:
        assert self.stack is not None
        arn = next(iter(self.stack.functions.values())).environment["LIGHTHOUSE_MASTER_SECRET_ARN"]
        return str(self.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])

    def stop(self) -> None:
        self._stop.set()
        if self.topic_rules is not None:
            self.topic_rules.stop()
            self.topic_rules = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        for poller in self.pollers:
            poller.join(timeout=5)
        if self._recovery is not None:
            self._recovery.join(timeout=30)
        if self.runtime is not None and hasattr(self.runtime, "stop"):
            self.runtime.stop()
        self._stop_front_ends()
        if self.persistence is not None:
            self.persistence.close()
            self.persistence = None
        _bridge.uninstall()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        self._restore_env()

    def _stop_front_ends(self) -> None:
        if self.websocket is not None:
            self.websocket.stop()
            management_bridge.uninstall()
            self.websocket = None
        for server in (self.api_server, self.aws_server, *self.function_urls.values()):
            if server is not None:
                server.stop()
        self.function_urls = {}

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what callers need --------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        assert self.api_server is not None, "local cloud not started"
        return self.api_server.url

    @property
    def websocket_url(self) -> str | None:
        """The WebSocket API (connect with ?token=<bearer token>)."""
        return self.websocket.url if self.websocket is not None else None

    @property
    def mcp_url(self) -> str | None:
        """The MCP function's Streamable HTTP endpoint (at its function URL)."""
        server = self.function_urls.get("McpFunction")
        return f"{server.url}/mcp" if server is not None else None

    @property
    def aws_endpoint_url(self) -> str:
        assert self.aws_server is not None, "local cloud not started"
        return self.aws_server.url

    def client(self, service: str) -> Any:
        """An in-process client (intercepted by the emulator: no HTTP)."""
        return boto3.session.Session().client(service, region_name=REGION)  # type: ignore[call-overload]

    def function_environment(self) -> dict[str, str]:
        """The environment every function sees; one process, so conflicting values are an error."""
        assert self.stack is not None
        merged: dict[str, str] = {}
        for spec in self.stack.functions.values():
            for key, value in spec.environment.items():
                if key in merged and merged[key] != value:
                    raise TemplateError(f"functions disagree on {key}; the local cloud shares one environment")
                merged[key] = value
        merged["LIGHTHOUSE_MODE"] = "local"
        # moto has no AppConfig data plane: flags are read from the event store (lighthouse.flags.store).
        merged["LIGHTHOUSE_FLAGS_STORE"] = "events"
        # Every write here is made in this process and wakes its waiters at once; storage re-reads
        # are only a safety net, so idle long-polls re-read it every 5 s rather than every second.
        merged.setdefault("LIGHTHOUSE_LONG_POLL_FIRST_RECHECK_SECONDS", "5")
        merged.setdefault("LIGHTHOUSE_LONG_POLL_RECHECK_SECONDS", "5")
        merged["POWERTOOLS_METRICS_DISABLED"] = "true"
        merged["POWERTOOLS_TRACE_DISABLED"] = "true"  # no X-Ray daemon here
        if self.aws_server is not None:
            merged["LIGHTHOUSE_PRESIGN_ENDPOINT_URL"] = self.aws_endpoint_url
        merged["POWERTOOLS_LOG_LEVEL"] = os.environ.get("LIGHTHOUSE_LOG_LEVEL", "WARNING")
        return merged

    def reconfigure(self, values: dict[str, str | None]) -> None:
        """Change the functions' environment (None unsets) and retire their containers, as Lambda's
        UpdateFunctionConfiguration does: the next invocations compose their roots from the new values."""
        for key, value in values.items():
            if key not in self._saved_env:
                self._saved_env[key] = os.environ.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._components = None
        if self.runtime is not None:
            self.runtime.recycle()

    @contextmanager
    def reconfigured(self, **values: str) -> Iterator[None]:
        """`reconfigure` for the duration of a block, then back to what it was."""
        before: dict[str, str | None] = {key: os.environ.get(key) for key in values}
        self.reconfigure(dict(values))
        try:
            yield
        finally:
            self.reconfigure(before)

    def components(self) -> Components:
        """The parts the functions compose from, over this cloud and its environment as it is now
        (tests and benchmarks use them to set up and to inspect)."""
        from lighthouse.aws import AwsClients
        from lighthouse.composition import Components
        from lighthouse.config import Settings

        if self._components is None:
            self._components = Components(Settings(), AwsClients())
        return self._components

    def operator_credential(self) -> tuple[str, str]:
        """(agent id, secret) of the built-in operator, derived from this stack's master secret."""
        from lighthouse.agents.models import OPERATOR_ID
        from lighthouse.auth.keys import operator_secret

        arn = self.function_environment()["LIGHTHOUSE_MASTER_SECRET_ARN"]
        master = self.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        return OPERATOR_ID, operator_secret(master)

    def stream_poller(self, function: str = "ProjectorFunction") -> StreamPoller:
        return next(p for p in self.pollers if isinstance(p, StreamPoller) and p.source.function == function)

    def schedule_runner(self, source_prefix: str) -> ScheduleRunner:
        return next(
            p for p in self.pollers if isinstance(p, ScheduleRunner) and p.schedule.source.startswith(source_prefix)
        )

    def wait_for_projection(self, timeout: float = 30.0) -> None:
        """Block until every stream record written so far has been delivered to the projector."""
        from moto.dynamodb.models import dynamodb_backends

        tables = dynamodb_backends[ACCOUNT][REGION].tables
        deadline = time.monotonic() + timeout
        for poller in self.pollers:
            if not isinstance(poller, StreamPoller):
                continue
            # The emulator's own count (reading the whole stream through the API each time made this
            # O(records) per check).
            shard = tables[table_of_stream(poller.source.stream_arn)].stream_shard
            while shard is not None and poller.records_delivered < len(shard.items):
                if time.monotonic() > deadline:
                    raise TimeoutError("the projector did not catch up with the event stream in time")
                time.sleep(0.01)

    # ---- internals ----------------------------------------------------------------------------

    def _start_sources(self) -> None:
        assert self.stack is not None
        assert self.runtime is not None
        sqs = self.client("sqs")
        for queue_source in self.stack.queue_sources:
            for _ in range(queue_source.concurrency):
                self.pollers.append(SqsPoller(queue_source, sqs, self.runtime, REGION, self._stop, wake=queue_writes))
        for stream_source in self.stack.stream_sources:
            function = stream_source.function
            persistence = self.persistence
            self.pollers.append(
                StreamPoller(
                    stream_source,
                    self.client("dynamodbstreams"),
                    sqs,
                    self.runtime,
                    REGION,
                    self._stop,
                    release_iterator=_forget_shard_iterator,
                    wake=table_writes.table(table_of_stream(stream_source.stream_arn)),
                    resume_after=persistence.checkpoints(function) if persistence else None,
                    checkpoint=(
                        functools.partial(persistence.checkpoint, function) if persistence else lambda s, n: None
                    ),
                )
            )
        if self.options.start_schedules:
            stepfunctions = self.client("stepfunctions")
            for schedule in self.stack.schedules:
                self.pollers.append(
                    ScheduleRunner(
                        schedule,
                        self.runtime,
                        stepfunctions,
                        REGION,
                        ACCOUNT,
                        self._stop,
                        self.options.time_scale,
                    )
                )
        for poller in self.pollers:
            poller.start()

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            if key not in self._saved_env:
                self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value


@contextmanager
def running(options: LocalCloudOptions | None = None) -> Iterator[LocalCloud]:
    cloud = LocalCloud(options)
    cloud.start()
    try:
        yield cloud
    finally:
        cloud.stop()
