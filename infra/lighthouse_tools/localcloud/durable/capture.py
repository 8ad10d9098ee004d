"""Hooks on the emulated services that put each change on the journal before it is acknowledged.

What is recorded is the change's effect, in plain values, never the request: a DynamoDB write as
the item images it left (and the stream records it added), an SQS message as its whole state when it
is sent or received, a secret as its current value. Replaying such records is deterministic and
idempotent (except stream records, which carry their sequence numbers and are applied once), where
replaying requests would not be: receipt handles, message ids and execution ARNs are random.

DynamoDB changes are grouped per request under the emulator's item lock (atomicity.py), so a
transaction is one record and the journal's order is the order the writes were applied in. The
request thread then waits for the record to be on disk, outside the lock, so other requests go on
and share the next fsync.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from lighthouse_tools.localcloud import atomicity
from lighthouse_tools.localcloud.durable.journal import Journal

_DDB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
_SQS_OPERATIONS = (
    "send_message",
    "send_message_batch",
    "receive_message",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
    "purge_queue",
)
_SECRET_OPERATIONS = (
    "create_secret",
    "put_secret_value",
    "update_secret",
    "delete_secret",
    "restore_secret",
    "rotate_secret",
    "update_secret_version_stage",
)

_installed = False
_install_lock = threading.Lock()
# The journal changes go to; None while the cloud is not durable (tests, or while restoring).
_recorder: Recorder | None = None


def message_state(message: Any) -> dict[str, Any]:
    return {key: value for key, value in vars(message).items() if not key.startswith("__")}


def execution_record(execution: Any) -> dict[str, Any]:
    return {
        "arn": execution.execution_arn,
        "name": execution.name,
        "state_machine_arn": execution.state_machine_arn,
        "input": execution.execution_input,
        "start_date": execution.start_date,
        "status": "RUNNING",
    }


class Recorder:
    def __init__(self, journal: Journal, observe: Callable[[tuple[Any, ...]], None] | None = None) -> None:
        self.journal = journal
        self._local = threading.local()
        # Told of every record but the DynamoDB ones (the snapshot keeps its own books from them).
        self._observe = observe or (lambda change: None)

    # ---- DynamoDB: one record per request ---------------------------------------------------

    def ddb_request(self, backend: Any, call: Callable[[], Any]) -> Any:
        local = self._local
        if getattr(local, "depth", 0):
            return call()  # a nested write: part of the outer request's record
        with atomicity.lock:
            local.depth, local.items = 1, []
            marks = {name: len(t.stream_shard.items) for name, t in backend.tables.items() if t.stream_shard}
            try:
                return call()
            finally:
                # Changes are journaled even if the request failed after making them: memory and disk agree.
                streams = _stream_records_since(backend, marks)
                local.ticket = self.journal.append(("ddb", local.items, streams)) if local.items or streams else 0
                local.depth, local.items = 0, []

    def ddb_changed(self, table: Any, item: Any, deleted: bool) -> None:
        """An item's image after a write (or its removal); later images of one item replace earlier ones."""
        attributes = None if deleted else item.to_json()["Attributes"]
        range_key = item.range_key.to_json() if item.range_key is not None else None
        change = (table.name, item.hash_key.to_json(), range_key, attributes)
        local = self._local
        if getattr(local, "depth", 0):
            local.items.append(change)
        else:  # a write outside any request (none today): its own record
            self.journal.append_durably(("ddb", [change], []))

    def wait_for_own_record(self) -> None:
        ticket = getattr(self._local, "ticket", 0)
        if ticket:
            self._local.ticket = 0
            self.journal.wait(ticket)

    # ---- everything else: one record per change, waited for at once ------------------------

    def record(self, change: tuple[Any, ...]) -> None:
        self._observe(change)
        self.journal.append_durably(change)

    def record_later(self, change: tuple[Any, ...]) -> None:
        """Progress markers (a consumer's checkpoint): on disk with the next commit, not waited for."""
        self._observe(change)
        self.journal.append(change)


def _stream_records_since(backend: Any, marks: dict[str, int]) -> list[tuple[str, int, list[Any]]]:
    """(table, first sequence number, records) of what each table's stream gained after its mark."""
    streams = []
    for name, mark in marks.items():
        shard = backend.tables[name].stream_shard if name in backend.tables else None
        if shard is not None and len(shard.items) > mark:
            added = [record.record for record in shard.items[mark:]]
            streams.append((name, shard.starting_sequence_number + mark, added))
    return streams


def start(journal: Journal, observe: Callable[[tuple[Any, ...]], None] | None = None) -> Recorder:
    global _recorder
    install()
    _recorder = Recorder(journal, observe)
    return _recorder


def stop() -> None:
    global _recorder
    _recorder = None


def active() -> Recorder | None:
    return _recorder


def install() -> None:
    """Idempotent; the hooks do nothing while no recorder is active."""
    global _installed
    with _install_lock:
        if _installed:
            return
        atomicity.install_emulator_hooks()
        _hook_dynamodb()
        _hook_sqs()
        _hook_secrets()
        _hook_s3()
        _hook_stepfunctions()
        _installed = True


def _hook_dynamodb() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    put, delete = Table.put_item, Table.delete_item

    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = put(self, *args, **kwargs)
        recorder = _recorder
        if recorder is not None:
            recorder.ddb_changed(self, item, False)
        return item

    def delete_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = delete(self, *args, **kwargs)
        recorder = _recorder
        if recorder is not None and item is not None:
            recorder.ddb_changed(self, item, True)
        return item

    Table.put_item = functools.wraps(put)(put_item)  # type: ignore[method-assign]
    Table.delete_item = functools.wraps(delete)(delete_item)  # type: ignore[method-assign]

    # UpdateItem changes an existing item in place, without Table.put_item: its image is taken here.
    update = DynamoDBBackend.update_item

    def update_item(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        item = update(self, table_name, *args, **kwargs)
        recorder = _recorder
        if recorder is not None:
            recorder.ddb_changed(self.get_table(table_name), item, False)
        return item

    DynamoDBBackend.update_item = functools.wraps(update)(update_item)  # type: ignore[method-assign]

    for name in _DDB_WRITES:
        original = getattr(DynamoDBBackend, name)

        def request(self: Any, *args: Any, __original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            recorder = _recorder
            if recorder is None:
                return __original(self, *args, **kwargs)
            try:
                return recorder.ddb_request(self, lambda: __original(self, *args, **kwargs))
            finally:
                recorder.wait_for_own_record()

        setattr(DynamoDBBackend, name, functools.wraps(original)(request))


def _queue_ids(queue: Any) -> dict[str, Any]:
    return {message.id: message for message in list(queue._messages)}


def _hook_sqs() -> None:
    """An SQS request is recorded as the messages it changed, found by comparing each queue it may
    touch (the queue, and its dead-letter queue, where a receive moves messages) before and after."""
    from moto.sqs.models import SQSBackend

    for name in _SQS_OPERATIONS:
        original = getattr(SQSBackend, name)

        def operation(
            self: Any, queue_name: str, *args: Any, __original: Callable[..., Any] = original, **kwargs: Any
        ) -> Any:
            recorder = _recorder
            if recorder is None:
                return __original(self, queue_name, *args, **kwargs)
            queue = self.get_queue(queue_name)
            queues = [queue] + ([queue.dead_letter_queue] if queue.dead_letter_queue is not None else [])
            before = [
                (q, {m.id: (m.approximate_receive_count, m.visible_at, m.delayed_until) for m in list(q._messages)})
                for q in queues
            ]
            try:
                return __original(self, queue_name, *args, **kwargs)
            finally:
                for watched, seen in before:
                    now = _queue_ids(watched)
                    removed = [message_id for message_id in seen if message_id not in now]
                    if removed:
                        recorder.record(("sqs_del", watched.name, removed))
                    for message_id, message in now.items():
                        state = (message.approximate_receive_count, message.visible_at, message.delayed_until)
                        if seen.get(message_id) != state:
                            recorder.record(("sqs_put", watched.name, message_state(message)))

        setattr(SQSBackend, name, functools.wraps(original)(operation))


def _hook_secrets() -> None:
    from moto.secretsmanager.models import SecretsManagerBackend

    for name in _SECRET_OPERATIONS:
        original = getattr(SecretsManagerBackend, name)

        def operation(self: Any, *args: Any, __original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            recorder = _recorder
            if recorder is None:
                return __original(self, *args, **kwargs)
            given = str(kwargs.get("name", kwargs.get("secret_id", args[0] if args else "")))
            name = _secret_name(self, given)  # before the call: a forced delete leaves nothing to ask
            result = __original(self, *args, **kwargs)
            recorder.record(("secret", name, secret_state(self, name)))
            return result

        setattr(SecretsManagerBackend, name, functools.wraps(original)(operation))


def _secret_name(backend: Any, secret_id: str) -> str:
    """A secret's name from its name or ARN (a secret not created yet: the name given)."""
    for secret in dict.values(backend.secrets):
        if secret_id in (secret.name, secret.arn):
            return str(secret.name)
    return secret_id


def secret_state(backend: Any, name: str) -> dict[str, Any] | None:
    """The current value of a secret, or None if it is gone or scheduled for deletion."""
    secret = next((s for s in dict.values(backend.secrets) if s.name == name), None)
    if secret is None or secret.is_deleted():
        return None
    value = backend.get_secret_value(secret.name, None, "AWSCURRENT")
    return {
        "string": value.get("SecretString") if isinstance(value, dict) else secret.secret_string,
        "binary": secret.secret_binary,
        "description": secret.description,
    }


def _as_text(output: Any) -> str | None:
    return output if output is None or isinstance(output, str) else json.dumps(output, default=str)


def _hook_s3() -> None:
    from moto.s3.models import S3Backend

    put, delete = S3Backend.put_object, S3Backend.delete_object

    def put_object(self: Any, bucket_name: str, key_name: str, value: bytes, *args: Any, **kwargs: Any) -> Any:
        result = put(self, bucket_name, key_name, value, *args, **kwargs)
        recorder = _recorder
        if recorder is not None:
            recorder.record(("s3_put", bucket_name, key_name, bytes(value)))
        return result

    def delete_object(self: Any, bucket_name: str, key_name: str, *args: Any, **kwargs: Any) -> Any:
        result = delete(self, bucket_name, key_name, *args, **kwargs)
        recorder = _recorder
        if recorder is not None:
            recorder.record(("s3_del", bucket_name, key_name))
        return result

    S3Backend.put_object = functools.wraps(put)(put_object)  # type: ignore[method-assign]
    S3Backend.delete_object = functools.wraps(delete)(delete_object)  # type: ignore[method-assign]


def _hook_stepfunctions() -> None:
    from moto.stepfunctions.models import StepFunctionBackend
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    create, delete = StepFunctionBackend.create_state_machine, StepFunctionBackend.delete_state_machine
    update = StepFunctionsParserBackend.update_state_machine

    def create_state_machine(self: Any, name: str, definition: str, roleArn: str, *args: Any, **kwargs: Any) -> Any:
        machine = create(self, name, definition, roleArn, *args, **kwargs)
        recorder = _recorder
        if recorder is not None:
            recorder.record(("sfn_machine", machine.arn, name, machine.definition, roleArn, machine.type))
        return machine

    def update_state_machine(self: Any, arn: str, *args: Any, **kwargs: Any) -> Any:
        machine = update(self, arn, *args, **kwargs)
        recorder = _recorder
        if recorder is not None:
            recorder.record(
                ("sfn_machine", machine.arn, machine.name, machine.definition, machine.roleArn, machine.type)
            )
        return machine

    def delete_state_machine(self: Any, arn: str) -> None:
        delete(self, arn)
        recorder = _recorder
        if recorder is not None:
            recorder.record(("sfn_machine_deleted", arn))

    StepFunctionBackend.create_state_machine = functools.wraps(create)(create_state_machine)  # type: ignore[method-assign]
    StepFunctionsParserBackend.update_state_machine = functools.wraps(update)(update_state_machine)  # type: ignore[method-assign]
    StepFunctionBackend.delete_state_machine = functools.wraps(delete)(delete_state_machine)  # type: ignore[method-assign]

    start_execution = StepFunctionsParserBackend.start_execution

    def start(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        recorder = _recorder
        if recorder is None:
            return start_execution(self, state_machine_arn, *args, **kwargs)
        machine = self.describe_state_machine(state_machine_arn)
        known = len(machine.executions)
        execution = start_execution(self, state_machine_arn, *args, **kwargs)
        if len(machine.executions) > known:  # not the idempotent return of an existing execution
            recorder.record(("sfn_started", execution_record(execution)))
        return execution

    StepFunctionsParserBackend.start_execution = functools.wraps(start_execution)(start)  # type: ignore[method-assign]

    terminated = BaseExecutionWorkerCommunication.terminated

    def on_terminated(self: Any) -> None:
        terminated(self)
        recorder = _recorder
        execution = self.execution
        if recorder is not None and not getattr(execution, "lighthouse_recovery_abort", False):
            recorder.record_later(
                (
                    "sfn_ended",
                    execution.execution_arn,
                    {
                        "status": execution.status,
                        "stop_date": execution.stop_date or datetime.now(),
                        "output": _as_text(execution.output),
                        "error": execution.error,
                        "cause": execution.cause,
                    },
                )
            )

    BaseExecutionWorkerCommunication.terminated = on_terminated  # type: ignore[method-assign]
