"""Where validation requests live: stream ids, and the audit entries written with their appends."""

from __future__ import annotations

import json
from typing import Any

from lighthouse.events import EventStore
from lighthouse.events.recorders import Action
from lighthouse.validation import logic
from lighthouse.validation.models import ValidationState

POLICY_STREAM = "validation-policy"


def stream_id(request_id: str) -> str:
    return f"validation#{request_id}"


class ValidationAudit:
    """The command path's `Inline` for validation streams: the requester's audit entry is written in
    the transaction of every append that changes it, so the audit lists a request as soon as its
    decision is returned. The stream itself is short and is loaded by query."""

    def __init__(self, client: Any, read_models_table: str, events: EventStore) -> None:
        self._client = client
        self._table = read_models_table
        self._events = events

    def load(self, stream: str) -> tuple[ValidationState, int]:
        return self._events.load_state(stream, logic.FOLD)

    def writes(
        self, stream: str, before: tuple[ValidationState, int], after: tuple[ValidationState, int]
    ) -> list[Action]:
        from lighthouse.history.shadow import shadow_writes  # history reads validation's models

        shadows = shadow_writes(self._table, before[0], after[0])
        entry = logic.audit_entry(after[0])
        if entry is None or entry == logic.audit_entry(before[0]):
            return shadows
        item = {
            "model": {"S": logic.audit_model(entry.agent)},
            "key": {"S": logic.audit_key(entry.requested_at, entry.request_id)},
            "doc": {"S": json.dumps(entry.model_dump(mode="json"), sort_keys=True)},
            "revision": {"N": str(after[1])},
            "applied": {"S": json.dumps({stream: after[1]})},
        }
        # Also under every agent's audit (`*`), which the console's live audit and the overview read.
        everyone = {**item, "model": {"S": logic.audit_model(logic.EVERY_AGENT)}}
        # Unconditional: only appends to this stream write it, and their own conditions order them.
        return [
            {"Put": {"TableName": self._table, "Item": item}},
            {"Put": {"TableName": self._table, "Item": everyone}},
            *shadows,
        ]
