"""Runs the real handlers from functions/ the way Lambda does: one invocation per container.

Each container is its own import of the function's app.py, so module-level state (a Chalice
app's current request, a BatchProcessor's records) is never shared between two invocations
running at once. Containers are reused while warm, and new ones start up to a concurrency cap.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import queue
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from lighthouse_tools.localcloud.calls import counter
from lighthouse_tools.localcloud.provision import FunctionSpec


@dataclass
class LambdaContext:
    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str
    started: float
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.timeout_seconds - time.monotonic()) * 1000))


@dataclass
class Invocation:
    """What an invocation produced: a payload, or Lambda's error shape."""

    payload: Any
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float = 0.0

    @property
    def failed(self) -> bool:
        return self.error_type is not None

    def error_payload(self) -> dict[str, Any]:
        return {"errorType": self.error_type, "errorMessage": self.error_message}


class Container:
    _serial = itertools.count()

    def __init__(self, spec: FunctionSpec, generation: int = 0) -> None:
        self.generation = generation
        module_name, _, attribute = spec.handler.rpartition(".")
        path = spec.code_dir / f"{module_name.replace('.', '/')}.py"
        unique = f"_lighthouse_fn_{spec.logical_id}_{next(self._serial)}"
        loader_spec = importlib.util.spec_from_file_location(unique, path)
        if loader_spec is None or loader_spec.loader is None:
            raise ImportError(f"cannot load handler module {path}")
        module: ModuleType = importlib.util.module_from_spec(loader_spec)
        sys.modules[unique] = module
        loader_spec.loader.exec_module(module)
        self.handler = getattr(module, attribute)


class FunctionPool:
    def __init__(self, spec: FunctionSpec, max_concurrency: int) -> None:
        self.spec = spec
        self._idle: queue.LifoQueue[Container] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._started = 0
        self._max = max_concurrency
        self._generation = 0

    def acquire(self) -> Container:
        while True:
            try:
                container = self._idle.get_nowait()
            except queue.Empty:
                break
            if container.generation == self._generation:
                return container
            self._retire()
        with self._lock:
            can_start = self._started < self._max
            if can_start:
                self._started += 1
        if can_start:
            return Container(self.spec, self._generation)
        return self._idle.get()

    def release(self, container: Container) -> None:
        if container.generation != self._generation:
            self._retire()
            return
        self._idle.put(container)

    def recycle(self) -> None:
        """Retire every container (as a configuration change does on Lambda): the next invocation
        starts a new one, which composes its root from the environment as it is now."""
        self._generation += 1
        while True:
            try:
                self._idle.get_nowait()
            except queue.Empty:
                return
            self._retire()

    def _retire(self) -> None:
        with self._lock:
            self._started -= 1

    @property
    def containers(self) -> int:
        return self._started

    @property
    def busy(self) -> int:
        """Containers running an invocation now (on Lambda: concurrent executions of the function)."""
        return self._started - self._idle.qsize()


class FunctionRuntime:
    def __init__(self, functions: dict[str, FunctionSpec], max_concurrency: int = 32) -> None:
        self._pools = {logical_id: FunctionPool(spec, max_concurrency) for logical_id, spec in functions.items()}
        self._by_name = {spec.name: logical_id for logical_id, spec in functions.items()}
        self.invocations = 0
        # Invocations through the Lambda API (Step Functions tasks) running now: recovery paces itself by it.
        self.tasks_in_flight = 0
        self._tasks_lock = threading.Lock()

    def resolve(self, name_or_arn: str) -> str | None:
        """The logical id for a function name, ARN or logical id, or None if it is not ours."""
        name = name_or_arn
        if name.startswith("arn:"):
            name = name.split(":function:", 1)[-1]
        name = name.split(":", 1)[0]
        if name in self._pools:
            return name
        return self._by_name.get(name)

    def spec(self, logical_id: str) -> FunctionSpec:
        return self._pools[logical_id].spec

    def recycle(self) -> None:
        for pool in self._pools.values():
            pool.recycle()

    def busy(self, logical_id: str) -> int:
        return self._pools[logical_id].busy

    def warm(self, logical_id: str) -> None:
        pool = self._pools[logical_id]
        pool.release(pool.acquire())

    def invoke(self, logical_id: str, event: Any) -> Invocation:
        pool = self._pools[logical_id]
        spec = pool.spec
        container = pool.acquire()
        started = time.monotonic()
        context = LambdaContext(
            function_name=spec.name,
            invoked_function_arn=spec.arn,
            memory_limit_in_mb=spec.memory_mb,
            timeout_seconds=spec.timeout,
            aws_request_id=str(uuid.uuid4()),
            started=started,
        )
        self.invocations += 1
        try:
            with counter.invoking(logical_id):
                payload = container.handler(event, context)
            result = Invocation(payload=payload)
        except Exception as error:
            result = Invocation(
                payload=None,
                error_type=type(error).__name__,
                error_message=str(error),
            )
            traceback.print_exc()
        finally:
            pool.release(container)
        result.duration_ms = (time.monotonic() - started) * 1000
        counter.invocation(logical_id, result.duration_ms)
        if result.duration_ms > spec.timeout * 1000 and not result.failed:
            # A thread cannot be pre-empted; report what Lambda would have reported.
            result = Invocation(
                payload=None,
                error_type="Sandbox.Timedout",
                error_message=f"Task timed out after {spec.timeout}.00 seconds",
                duration_ms=result.duration_ms,
            )
        return result

    def invoke_for_lambda_api(self, logical_id: str, body: bytes | str | None) -> tuple[bytes, str | None]:
        """Invoke as the Lambda Invoke API does: JSON in, (payload bytes, function error) out."""
        raw = body.decode() if isinstance(body, bytes) else (body or "")
        event = json.loads(raw) if raw.strip() else {}
        with self._tasks_lock:
            self.tasks_in_flight += 1
        try:
            result = self.invoke(logical_id, event)
        finally:
            with self._tasks_lock:
                self.tasks_in_flight -= 1
        if result.failed:
            return json.dumps(result.error_payload()).encode(), "Unhandled"
        return json.dumps(result.payload).encode(), None
