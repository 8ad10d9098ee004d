"""Function code in worker processes, as Lambda runs it in containers apart from the services.

The emulator (moto's services, the Step Functions engine, the event source pollers, the HTTP front
doors) stays in the `lighthouse up` process; the handlers run in `processes` worker processes,
each hosting the in-process runtime (its containers are threads there). So the handlers' own CPU
(Chalice, Powertools, pydantic, botocore's request building and parsing) runs on another core than
the emulator that serves their AWS calls. A worker's AWS calls travel over its pipe to the emulator
(aws_pipe.py), which runs them as it runs an in-process client's.

What still serializes: each process's GIL, and in the emulator process every DynamoDB item
operation (atomicity.py holds one lock so that a condition and its write are one step) and the
emulator's request handling. An invocation goes to the worker with the fewest in flight.

Waiters (long-polls) in a worker are woken by writes made in other processes too: the emulator
tells every worker the notifier topics of each DynamoDB write it accepted (a stream id in the
events table, a model in the read models table), as the in-process notifier would have.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import threading
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from lighthouse_tools.localcloud import aws_pipe, calls
from lighthouse_tools.localcloud.provision import FunctionSpec
from lighthouse_tools.localcloud.runtime import FunctionRuntime, Invocation

# How long past a function's own timeout the parent waits for a worker's answer.
REPLY_GRACE_SECONDS = 30
# Runs the AWS calls workers send. A thread per call in flight, as the HTTP server had: a call can
# wait long (a synchronous Lambda invoke), and calls must never wait for each other.
_aws_calls = ThreadPoolExecutor(max_workers=512, thread_name_prefix="worker-aws-call")


class Worker:
    """One worker process and the pipe to it; replies are matched to calls by id."""

    _ids = itertools.count(1)

    def __init__(self, index: int, functions: dict[str, FunctionSpec], max_concurrency: int, env: dict[str, str]):
        context = multiprocessing.get_context("spawn")  # never fork a process full of threads
        self._connection, child = context.Pipe()
        self.process = context.Process(
            target=serve, args=(child, functions, max_concurrency, env), name=f"lighthouse-worker-{index}", daemon=True
        )
        self.process.start()
        child.close()
        self._sending = threading.Lock()
        self._pending: dict[int, Future[Invocation]] = {}
        self._pending_lock = threading.Lock()
        self.in_flight = 0
        self._reader = threading.Thread(target=self._read, name=f"worker-{index}-replies", daemon=True)
        self._reader.start()

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._sending:
            self._connection.send(message)

    def call(self, logical_id: str, event: Any, timeout: float) -> Invocation:
        call_id = next(self._ids)
        future: Future[Invocation] = Future()
        with self._pending_lock:
            self._pending[call_id] = future
            self.in_flight += 1
        try:
            self._send(("invoke", call_id, logical_id, event))
            return future.result(timeout=timeout)
        except TimeoutError:
            return Invocation(None, "Sandbox.Timedout", f"no answer from the worker within {timeout:.0f} s")
        finally:
            with self._pending_lock:
                self._pending.pop(call_id, None)
                self.in_flight -= 1

    def tell(self, message: tuple[Any, ...]) -> None:
        """A message that needs no answer (notify, recycle, warm); lost if the worker is gone (asking
        the process first is a waitpid per message, 7.5 % of this process at 50 agent pairs)."""
        with contextlib.suppress(OSError, ValueError):
            self._send(message)

    def _read(self) -> None:
        while True:
            try:
                message = self._connection.recv()
            except (EOFError, OSError):
                break
            if message[0] == "aws":
                _aws_calls.submit(self._answer, *message[1:])
                continue
            _, call_id, payload, error_type, error_message, duration_ms = message
            with self._pending_lock:
                future = self._pending.get(call_id)
            if future is not None and not future.done():
                future.set_result(Invocation(payload, error_type, error_message, duration_ms))
        # The process is gone: everything it was running failed as a crashed container would.
        with self._pending_lock:
            for future in self._pending.values():
                if not future.done():
                    future.set_result(Invocation(None, "Runtime.ExitError", "the worker process exited"))

    def _answer(self, call_id: int, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
        status, reply_headers, reply_body = aws_pipe.answer(method, url, headers, body)
        self.tell(("aws-reply", call_id, status, reply_headers, reply_body))

    def stop(self) -> None:
        with self._sending, contextlib.suppress(OSError, ValueError):  # already gone
            self._connection.send(("stop",))
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
        self._connection.close()


class WorkerRuntime(FunctionRuntime):
    """The runtime interface (invoke, warm, recycle) over worker processes.

    Tried and left out: running an invocation in this process while the platform is nearly idle
    (when the workers still called the emulator over HTTP, its AWS calls would have skipped that hop).
    One pair got faster, but at 50 pairs throughput fell back to the single-process figure (13
    against 20 round trips/s, tests/perf/bench_elicitation.py): every invocation run here takes this
    process's core from the emulator, which is what limits throughput.
    """

    def __init__(
        self,
        functions: dict[str, FunctionSpec],
        max_concurrency: int,
        processes: int,
        environment: dict[str, str],
        topics: dict[str, str],
    ) -> None:
        """`topics` maps a table name to the notifier topic prefix its writes wake ("stream", "model")."""
        super().__init__(functions, max_concurrency)
        self._functions = functions
        self._max_concurrency = max_concurrency
        self._environment = environment
        self._topics = topics
        self._lock = threading.Lock()
        self._workers = [Worker(i, functions, max_concurrency, environment) for i in range(processes)]
        calls.write_observers.append(self._observe_write)

    def invoke(self, logical_id: str, event: Any) -> Invocation:
        spec = self.spec(logical_id)
        result = self._worker().call(logical_id, event, spec.timeout + REPLY_GRACE_SECONDS)
        calls.counter.invocation(logical_id, result.duration_ms)
        self.invocations += 1
        return result

    def _worker(self) -> Worker:
        with self._lock:
            for index, worker in enumerate(self._workers):
                if not worker.process.is_alive():  # a crashed worker is replaced, as a container is
                    self._workers[index] = Worker(index, self._functions, self._max_concurrency, self._environment)
            return min(self._workers, key=lambda worker: worker.in_flight)

    def warm(self, logical_id: str) -> None:
        for worker in self._workers:
            worker.tell(("warm", logical_id))

    def recycle(self) -> None:
        """Retire every container, in every worker, which take the functions' environment as the
        local cloud has it now (a reconfiguration changed it)."""
        self._environment = worker_environment(self._environment)
        for worker in self._workers:
            worker.tell(("recycle", self._environment))

    def stop(self) -> None:
        if self._observe_write in calls.write_observers:
            calls.write_observers.remove(self._observe_write)
        for worker in self._workers:
            worker.stop()

    def _observe_write(self, operation: str, request: dict[str, Any]) -> None:
        topics = sorted(set(_topics_of(operation, request, self._topics)))
        if not topics:
            return
        for worker in self._workers:
            worker.tell(("notify", topics))


def _topics_of(operation: str, request: dict[str, Any], tables: dict[str, str]) -> list[str]:
    """The notifier topics a DynamoDB write request wakes: `stream:<id>` for the events table,
    `model:<model>` for the read models table."""
    writes: list[tuple[str, dict[str, Any]]] = []
    if operation == "TransactWriteItems":
        for action in request.get("TransactItems", []):
            for kind, body in action.items():
                if kind != "ConditionCheck":
                    writes.append((body.get("TableName", ""), body.get("Item") or body.get("Key") or {}))
    elif operation == "BatchWriteItem":
        for table, entries in request.get("RequestItems", {}).items():
            for entry in entries:
                for body in entry.values():
                    writes.append((table, body.get("Item") or body.get("Key") or {}))
    else:
        writes.append((request.get("TableName", ""), request.get("Item") or request.get("Key") or {}))
    topics = []
    for table, key in writes:
        prefix = tables.get(table)
        attribute = "stream_id" if prefix == "stream" else "model"
        value = key.get(attribute, {}).get("S") if prefix else None
        if value:
            topics.append(f"{prefix}:{value}")
    return topics


def worker_environment(base: dict[str, str]) -> dict[str, str]:
    """`base` with the platform's settings as this process's environment has them now. Never an
    endpoint URL: a worker's calls address AWS and are forwarded (aws_pipe.py)."""
    ours = ("LIGHTHOUSE_", "POWERTOOLS_")
    kept = {k: v for k, v in base.items() if not k.startswith(ours)}
    current = {k: v for k, v in os.environ.items() if k.startswith(ours) and k != "LIGHTHOUSE_AWS_ENDPOINT_URL"}
    return {**kept, **current}


# ---- the worker process ---------------------------------------------------------------------------


def serve(
    connection: Connection, functions: dict[str, FunctionSpec], max_concurrency: int, env: dict[str, str]
) -> None:
    """A worker's life: run invocations on threads, forward wake-ups, retire containers when told."""
    os.environ.update(env)
    sending = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with sending:
            connection.send(message)

    # Before any client exists: every botocore session made from now on forwards its calls.
    forwarder = aws_pipe.forward_every_aws_call(send)
    from lighthouse.notify import notifier

    runtime = FunctionRuntime(functions, max_concurrency)

    def run(call_id: int, logical_id: str, event: Any) -> None:
        try:
            result = runtime.invoke(logical_id, event)
        except Exception as error:  # the runtime answers for its handlers; this is the runtime failing
            traceback.print_exc()
            result = Invocation(None, type(error).__name__, str(error))
        send(("result", call_id, result.payload, result.error_type, result.error_message, result.duration_ms))

    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            forwarder.fail_all("the local cloud stopped")
            return
        kind = message[0]
        if kind == "aws-reply":
            forwarder.resolve(*message[1:])
        elif kind == "invoke":
            threading.Thread(target=run, args=message[1:], daemon=True).start()
        elif kind == "notify":
            for topic in message[1]:
                notifier.notify(topic)
        elif kind == "recycle":
            os.environ.clear()
            os.environ.update(message[1])
            runtime.recycle()
        elif kind == "warm":
            threading.Thread(target=runtime.warm, args=(message[1],), daemon=True).start()
        elif kind == "stop":
            forwarder.fail_all("the local cloud stopped")
            return
