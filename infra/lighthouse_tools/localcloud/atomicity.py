"""Make the emulated DynamoDB's item operations atomic, as DynamoDB's are.

moto checks a condition and then writes, with no lock in between; two threads can both pass the
check (we measured two conditional updates on one item both succeeding). Serializing the backend's
item operations restores the guarantee the event store, the limiter and the projector rely on.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_OPERATIONS = (
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
_lock = threading.RLock()
_installed = False


def make_dynamodb_item_operations_atomic() -> None:
    """Idempotent; stays installed for the life of the process (it only adds a lock)."""
    global _installed
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend

    for name in _OPERATIONS:
        original = getattr(DynamoDBBackend, name)

        def locked(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with _lock:
                return __original(*args, **kwargs)

        setattr(DynamoDBBackend, name, functools.wraps(original)(locked))
    _installed = True
