"""moto objects put back from plain values: items, lazily built partitions, finished executions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

RECOVERY_ERROR = "States.ServiceRestart"


class RestoredExecution:
    """An execution from before a restart: described, listed and its history shown as Step Functions
    shows one, but with no worker behind it (moto's own Execution needs a live one)."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record  # shared with the books: a later link to the successor shows here
        self.execution_arn = self.exec_arn = record["arn"]
        self.name = record["name"]
        self.state_machine_arn = record["state_machine_arn"]
        self.execution_input = record["input"]
        self.start_date = record["start_date"]
        self.output_details = {"included": True}
        self.exec_worker = None

    @property
    def status(self) -> str:
        return str(self.record["status"])

    @property
    def stop_date(self) -> datetime | None:
        return self.record.get("stop_date")

    @property
    def output(self) -> str | None:
        return self.record.get("output")

    @property
    def error(self) -> str | None:
        return self.record.get("error")

    @property
    def cause(self) -> str | None:
        return self.record.get("cause")

    def stop(self, **_: Any) -> None:
        """It has ended already; stopping it changes nothing."""

    def to_history_output(self) -> dict[str, Any]:
        events: list[dict[str, Any]] = [
            {
                "id": 1,
                "previousEventId": 0,
                "timestamp": self.start_date,
                "type": "ExecutionStarted",
                "executionStartedEventDetails": {"input": self.execution_input, "inputDetails": {"truncated": False}},
            }
        ]
        ending = self._ending()
        if ending is not None:
            kind, details = ending
            key = f"execution{kind.removeprefix('Execution')}EventDetails"
            events.append(_event(2, self.stop_date or self.start_date, kind, key, details))
        return {"events": events}

    def _ending(self) -> tuple[str, dict[str, Any]] | None:
        """The history's last event, as Step Functions names it, and its details."""
        failure = {"error": self.error or "", "cause": self.cause or ""}
        endings: dict[str, tuple[str, dict[str, Any]]] = {
            "ABORTED": ("ExecutionAborted", {"error": self.error or RECOVERY_ERROR, "cause": self.cause or ""}),
            "SUCCEEDED": (
                "ExecutionSucceeded",
                {"output": self.output or "null", "outputDetails": {"truncated": False}},
            ),
            "FAILED": ("ExecutionFailed", failure),
            "TIMED_OUT": ("ExecutionTimedOut", failure),
        }
        return endings.get(self.status)


def _event(number: int, at: datetime, kind: str, key: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"id": number, "previousEventId": number - 1, "timestamp": at, "type": kind, key: details}


def stored_item(hash_key: Any, range_key: Any, attributes: dict[str, Any]) -> Any:
    """A moto Item from an image the emulator accepted before. Item() would check the 400 KB limit
    again as it adds each attribute, summing the sizes of all the others each time (quadratic: 80 %
    of restoring 100,000 events); the image is known to be within it."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    item: Any = Item.__new__(Item)
    item.hash_key, item.range_key = hash_key, range_key
    attrs = LimitedSizeDict()
    dict.update(attrs, {name: attribute(DynamoType, value) for name, value in attributes.items()})
    item.attrs = attrs
    return item


class LazyPartition(dict[Any, Any]):
    """One partition of a table with a sort key, as restored: its items become moto Items on the
    first use of the partition. Building every Item of a big table at start-up was most of the
    restore time, and most partitions (old event streams) are not read again soon."""

    def __init__(self, hash_key: Any, range_name: str, members: list[dict[str, Any]]) -> None:
        super().__init__()
        self._pending: tuple[Any, str, list[dict[str, Any]]] | None = (hash_key, range_name, members)

    def add(self, attributes: dict[str, Any]) -> bool:
        """Keep another image for later if nothing has been built yet; False once it has."""
        if self._pending is None:
            return False
        self._pending[2].append(attributes)
        return True

    def __len__(self) -> int:
        """DescribeTable counts every partition's items (the health check calls it): counted from
        the images, without building them."""
        pending = self._pending
        if pending is None:
            return dict.__len__(self)
        range_name = pending[1]
        return len({tuple(next(iter(image[range_name].items()))) for image in pending[2]})

    def _load(self) -> None:
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        from moto.dynamodb.models.dynamo_type import DynamoType

        hash_key, range_name, members = pending
        for attributes in members:
            range_key = attribute(DynamoType, attributes[range_name])
            dict.__setitem__(self, range_key, stored_item(hash_key, range_key, attributes))


def _loading(name: str) -> Any:
    method = getattr(dict, name)

    def loaded(self: LazyPartition, *args: Any, **kwargs: Any) -> Any:
        self._load()
        return method(self, *args, **kwargs)

    loaded.__name__ = name
    return loaded


for _name in (
    "__getitem__", "__setitem__", "__delitem__", "__contains__", "__iter__", "__eq__", "__repr__",
    "__reversed__", "__or__", "__ior__", "get", "pop", "popitem", "setdefault", "update", "keys", "values",
    "items", "copy", "clear", "__reduce_ex__",
):  # fmt: skip
    setattr(LazyPartition, _name, _loading(_name))


_SCALARS = frozenset(("S", "N", "B", "BOOL", "NULL"))


def attribute(kind: Any, value: dict[str, Any]) -> Any:
    """DynamoType(value), without its generic path for the scalar types most attributes are."""
    if len(value) == 1:
        ((type_name, content),) = value.items()
        if type_name in _SCALARS:
            attribute = kind.__new__(kind)
            attribute.type, attribute.value = type_name, content
            return attribute
    return kind(value)
