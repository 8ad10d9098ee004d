"""Counts every call the emulator serves: each AWS API call (in-process or over HTTP), each Lambda
invocation with its duration, each Step Functions state transition.

Tests and benchmarks read the difference around an operation (`with cloud.calls.measure() as
measured: ...`), so a change that adds a DynamoDB read to a hot path shows up as a number, and the
cost model (`lighthouse_tools.costs`) turns the same counts into money.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from lighthouse_tools import costs


@dataclass
class Calls:
    """What was counted: the AWS API calls the functions made, by (service, operation), and Lambda
    time by function. Calls made outside any invocation (a test checking the tables) are listed
    under "-" in `by_function` only."""

    api: Counter[tuple[str, str]] = field(default_factory=Counter)
    # The same calls by the function whose invocation made them ("-" outside any invocation).
    by_function: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    invocations: Counter[str] = field(default_factory=Counter)
    lambda_ms: dict[str, float] = field(default_factory=dict)
    transitions: int = 0
    # DynamoDB request units the functions' calls consumed (lighthouse_tools.costs.dynamodb_units).
    read_units: float = 0.0
    write_units: float = 0.0

    def total(self, service: str | None = None) -> int:
        return sum(n for (s, _), n in self.api.items() if service is None or s == service)

    def of(self, service: str, operation: str) -> int:
        return self.api[(service, operation)]

    def minus(self, earlier: Calls) -> Calls:
        return Calls(
            api=self.api - earlier.api,
            by_function=self.by_function - earlier.by_function,
            invocations=self.invocations - earlier.invocations,
            lambda_ms={
                name: ms - earlier.lambda_ms.get(name, 0.0)
                for name, ms in self.lambda_ms.items()
                if ms - earlier.lambda_ms.get(name, 0.0) > 0
            },
            transitions=self.transitions - earlier.transitions,
            read_units=self.read_units - earlier.read_units,
            write_units=self.write_units - earlier.write_units,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "aws_calls": self.total(),
            "by_operation": {f"{s}:{o}": n for (s, o), n in sorted(self.api.items())},
            "by_function": {f"{f} {s}:{o}": n for (f, s, o), n in sorted(self.by_function.items())},
            "invocations": dict(self.invocations),
            "lambda_ms": {name: round(ms, 1) for name, ms in self.lambda_ms.items()},
            "transitions": self.transitions,
            "dynamodb_units": {"read": round(self.read_units, 2), "write": round(self.write_units, 2)},
        }


class CallCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls = Calls()
        self._local = threading.local()

    @contextmanager
    def uncounted(self) -> Iterator[None]:
        """Calls the platform's code does not make: the event source pollers' reads (Lambda's event
        source mappings make them whether or not anything happens) and the Step Functions engine's
        own calls to run a Task (a state transition and a Lambda invocation, counted as those)."""
        outer = getattr(self._local, "off", False)
        self._local.off = True
        try:
            yield
        finally:
            self._local.off = outer

    @contextmanager
    def invoking(self, function: str) -> Iterator[None]:
        """Attribute the calls made on this thread to `function` while it runs."""
        outer, outer_off = getattr(self._local, "function", "-"), getattr(self._local, "off", False)
        self._local.function, self._local.off = function, False
        try:
            yield
        finally:
            self._local.function, self._local.off = outer, outer_off

    def current_function(self) -> str:
        """The function whose invocation runs on this thread ("-" outside any)."""
        return str(getattr(self._local, "function", "-"))

    def _attributed(self, caller: str | None) -> str:
        """The function a call on this thread belongs to: the invocation running here, else
        `caller`, the function named by a worker process's FUNCTION_HEADER."""
        function = str(getattr(self._local, "function", "-"))
        return caller if function == "-" and caller else function

    def api_call(self, service: str, operation: str, caller: str | None = None) -> None:
        """Count a call; `caller` names the function when the call came over HTTP from a worker
        process, where this thread's own attribution does not reach."""
        if getattr(self._local, "off", False):
            return
        function = self._attributed(caller)
        if operation == "Invoke" and function == "-":
            # The Step Functions engine running a Task (in a thread of its own); no platform code
            # invokes a function outside one. It is counted as the invocation and the transition.
            return
        with self._lock:
            if function != "-":  # outside any invocation: a test's or a benchmark's own call
                self._calls.api[(service, operation)] += 1
            self._calls.by_function[(function, service, operation)] += 1

    def units(self, read: float, write: float, caller: str | None = None) -> None:
        """DynamoDB request units of a call counted by `api_call` (the same attribution)."""
        if getattr(self._local, "off", False) or self._attributed(caller) == "-":
            return
        with self._lock:
            self._calls.read_units += read
            self._calls.write_units += write

    def invocation(self, function: str, duration_ms: float) -> None:
        with self._lock:
            self._calls.invocations[function] += 1
            self._calls.lambda_ms[function] = self._calls.lambda_ms.get(function, 0.0) + duration_ms

    def transition(self) -> None:
        with self._lock:
            self._calls.transitions += 1

    def snapshot(self) -> Calls:
        with self._lock:
            calls = self._calls
            return Calls(
                Counter(calls.api),
                Counter(calls.by_function),
                Counter(calls.invocations),
                dict(calls.lambda_ms),
                calls.transitions,
                calls.read_units,
                calls.write_units,
            )

    @contextmanager
    def measure(self) -> Iterator[Calls]:
        """The calls made while the block runs (by any thread: measure one operation at a time)."""
        before = self.snapshot()
        measured = Calls()
        try:
            yield measured
        finally:
            delta = self.snapshot().minus(before)
            measured.api, measured.by_function, measured.invocations = delta.api, delta.by_function, delta.invocations
            measured.lambda_ms, measured.transitions = delta.lambda_ms, delta.transitions
            measured.read_units, measured.write_units = delta.read_units, delta.write_units


counter = CallCounter()
_installed = False
# Sent by worker processes with every AWS call a function makes (see workers.py).
FUNCTION_HEADER = "x-lighthouse-function"
# Told about every DynamoDB write the emulator accepted: (operation, request body).
write_observers: list[Callable[[str, dict[str, Any]], None]] = []
_WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
_READ_OPERATIONS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}


def install() -> None:
    """Count at moto's one funnel for API calls, and at the Step Functions interpreter's state entry.
    Idempotent; the hooks only count."""
    global _installed
    if _installed:
        return
    from moto.core.responses import BaseResponse

    original = BaseResponse.call_action

    def call_action(self: Any) -> Any:
        service, operation, caller = str(self.service_name), "", None
        with contextlib.suppress(Exception):  # counting must never change what the emulator answers
            operation = str(self._get_action())
            caller = (self.headers or {}).get(FUNCTION_HEADER)
            counter.api_call(service, operation, caller)
        response = original(self)
        if service == "dynamodb":
            _after_dynamodb_call(operation, self.body, response, caller)
        return response

    BaseResponse.call_action = call_action  # type: ignore[method-assign]
    _count_transitions()
    _installed = True


def _after_dynamodb_call(operation: str, body: Any, response: Any, caller: str | None) -> None:
    """Count the request units the call consumed; tell the write observers about an accepted write.
    Neither may change what the emulator answers, so both swallow their own errors."""
    with contextlib.suppress(Exception):
        request, accepted = _parsed(body), isinstance(response, tuple) and int(response[0]) < 300
        answer = _parsed(response[2]) if accepted and operation in _READ_OPERATIONS else {}
        counter.units(*costs.dynamodb_units(operation, request, answer), caller)
        if operation in _WRITE_OPERATIONS and accepted:
            for observe in list(write_observers):
                with contextlib.suppress(Exception):
                    observe(operation, request)


def _parsed(body: Any) -> dict[str, Any]:
    """A request or response body: parsed already (in-process calls) or JSON text (over HTTP)."""
    if isinstance(body, dict):
        return body
    return dict(json.loads(body)) if body else {}


def _count_transitions() -> None:
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField

    original = CommonStateField._eval_body

    def eval_body(self: Any, env: Any) -> Any:
        counter.transition()
        with counter.uncounted():
            return original(self, env)

    CommonStateField._eval_body = eval_body  # type: ignore[method-assign]


# The path on the AWS endpoint where a benchmark in another process reads the counter.
COUNTS_PATH = "/_lighthouse/calls"


def serving_counts(app: Any, functions: dict[str, Any]) -> Any:
    """`app` (the AWS endpoint) that also answers GET COUNTS_PATH with the counter's figures and
    what the cost model needs about the functions (`functions`: logical id -> memory in MB, and
    "api" -> the API function's logical id)."""

    def counts_or_app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != COUNTS_PATH or environ.get("REQUEST_METHOD") != "GET":
            return app(environ, start_response)
        body = json.dumps({"calls": counter.snapshot().as_dict(), **functions}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return counts_or_app
