"""Hooks into the emulated services that the local runtime needs.

1. Atomic DynamoDB item operations. moto checks a condition and then writes, with no lock in
   between; two threads can both pass the check (two conditional updates of one item both
   succeeded in our tests). Serializing the backend's item operations restores DynamoDB's guarantee.
2. Queries by partition. moto answers a base-table Query by listing and sorting every item of the
   table, so each query costs O(table size); the event store queries on every request. The query
   keeps moto's own code but is handed only the queried partition.
3. Write signals. Pollers of streams and queues sleep until their table or a queue is written (or a
   short timeout passes) instead of polling the emulator many times a second while idle.
4. Transactions without a table copy. moto backs up every table a TransactWriteItems touches with
   `copy.deepcopy` (items, indexes and the stream shard) so it can roll back a failed transaction:
   O(table size) per transaction, which made a two-event append cost 100+ ms once the events table
   held some thousands of items. Under the item lock nothing changes between a check and a write, so
   the conditions (and the one-operation-per-item rule) are checked first, a failing transaction is
   refused before anything is written, and moto's own code then applies one that will succeed.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_ITEM_OPERATIONS = (
    "put_item",
    "get_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "batch_get_item",
    "batch_write_item",
    "transact_get_items",
    "transact_write_items",
)
# batch_write_item is a no-op in moto's backend: its items arrive through put_item and delete_item.
_WRITES = {"put_item", "update_item", "delete_item", "transact_write_items"}
_QUEUE_WRITES = ("send_message", "send_message_batch", "change_message_visibility")
lock = threading.RLock()
_installed = False


class WriteSignal:
    """A generation counter that pollers wait on."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0

    def bump(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def generation(self) -> int:
        with self._condition:
            return self._generation

    def wait(self, seen: int, timeout: float) -> int:
        with self._condition:
            self._condition.wait_for(lambda: self._generation != seen, timeout=timeout)
            return self._generation


class TableSignals:
    """One WriteSignal per table, so a stream poller wakes for writes to its own table only (a write
    to a read model or a rate-limit bucket does not send the event stream's pollers to GetRecords)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._signals: dict[str, WriteSignal] = {}

    def table(self, name: str) -> WriteSignal:
        with self._lock:
            return self._signals.setdefault(name, WriteSignal())

    def bump(self, names: set[str]) -> None:
        for name in names:
            self.table(name).bump()


table_writes = TableSignals()
queue_writes = WriteSignal()


def table_of_stream(stream_arn: str) -> str:
    """arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label> -> <name>."""
    return stream_arn.split(":table/", 1)[1].split("/stream/", 1)[0]


def _written_tables(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> set[str]:
    if name == "transact_write_items":
        items = kwargs.get("transact_items", args[1] if len(args) > 1 else [])
        return {op["TableName"] for entry in items for op in entry.values() if "TableName" in op}
    table = kwargs.get("table_name", args[1] if len(args) > 1 else None)
    return {table} if isinstance(table, str) else set()


def _wrap(cls: Any, name: str, locked: bool, signal: WriteSignal | None, tables: bool = False) -> None:
    original = getattr(cls, name)

    def call(*args: Any, **kwargs: Any) -> Any:
        if locked:
            with lock:
                result = original(*args, **kwargs)
        else:
            result = original(*args, **kwargs)
        if signal is not None:
            signal.bump()
        if tables:
            table_writes.bump(_written_tables(name, args, kwargs))
        return result

    setattr(cls, name, functools.wraps(original)(call))


def install_emulator_hooks() -> None:
    """Idempotent; stays installed for the life of the process (it only adds a lock and signals)."""
    global _installed
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.sqs.models import SQSBackend

    for name in _ITEM_OPERATIONS:
        _wrap(DynamoDBBackend, name, locked=True, signal=None, tables=name in _WRITES)
    for name in _QUEUE_WRITES:
        _wrap(SQSBackend, name, locked=False, signal=queue_writes)
    _query_one_partition()
    _transactions_without_table_copies()
    _installed = True


def _transactions_without_table_copies() -> None:
    import copy

    import moto.dynamodb.models as models
    from moto.dynamodb.exceptions import MultipleTransactionsException, TransactionCanceledException
    from moto.dynamodb.models.table import Table

    class _BackupsAreNotNeeded:
        """Stands in for the `copy` module inside moto's DynamoDB backend: a Table is not copied."""

        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    models.__dict__["copy"] = _BackupsAreNotNeeded()
    filter_expression = models.__dict__["get_filter_expression"]
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        with lock:
            errors: list[tuple[Any, Any, Any]] = []
            seen: set[tuple[str, str]] = set()
            failed = False
            for entry in transact_items:
                op_type, op = next(iter(entry.items()))
                table = self.get_table(op["TableName"])
                if op_type == "Put":
                    attrs = op["Item"]
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]
                identity = (op["TableName"], str(dict(sorted(key.items()))))
                if identity in seen:
                    raise MultipleTransactionsException()
                seen.add(identity)
                condition = op.get("ConditionExpression")
                if condition is None:
                    errors.append((None, None, None))
                    continue
                current = self.get_item(op["TableName"], key)
                check = filter_expression(
                    condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                )
                if check.expr(current):
                    errors.append((None, None, None))
                else:
                    failed = True
                    old = current.to_json()["Attributes"] if current is not None else None
                    wanted = op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
                    errors.append(("ConditionalCheckFailed", "The conditional request failed", old if wanted else None))
            if failed:
                raise TransactionCanceledException(errors)
            return original(self, transact_items)

    models.DynamoDBBackend.transact_write_items = functools.wraps(original)(transact_write_items)  # type: ignore[method-assign]


_partition = threading.local()


def _query_one_partition() -> None:
    from moto.dynamodb.models.table import Table

    original_query, original_all_items = Table.query, Table.all_items

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)  # 8th parameter
        base_table = index_name is None
        _partition.key = hash_key if base_table else None
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _partition.key = None

    def all_items(self: Any) -> Any:
        key = getattr(_partition, "key", None)
        if key is None or not self.range_key_attr:
            return original_all_items(self)
        partition = self.items.get(key)
        return sorted(partition.values(), key=lambda item: item.range_key) if partition else []

    Table.query = functools.wraps(original_query)(query)  # type: ignore[method-assign]
    Table.all_items = functools.wraps(original_all_items)(all_items)  # type: ignore[method-assign]
