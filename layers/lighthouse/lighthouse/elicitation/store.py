"""Where elicitations live: their streams, and the read models written in the same transaction as
every append to them (inline projections).

- `elicitations/<id>`: the fold of the stream at its version, and the task token of the execution
  waiting for its end. A command loads it with one GetItem instead of querying the stream, and a
  caller reads its own write at once.
- `pending#<agent>/<id>`: the question in its target's inbox, from its request until its end; an
  answered question leaves the inbox in the transaction that records the answer.

Every append writes the state document on the condition that it is still at the version (and the
waiting token) it was loaded with, so the document can never disagree with the stream.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from lighthouse.elicitation.models import ElicitationState
from lighthouse.events.recorders import Action

STATE_MODEL = "elicitations"
PENDING_MODEL = "pending"


def stream_id(elicitation_id: str) -> str:
    return f"elicitation#{elicitation_id}"


def violation_stream(violation_id: str) -> str:
    return f"violation#{violation_id}"


_NEWEST_FIRST_MS = 10**13  # keys sort newest first: milliseconds counted down from here


def asked_model(agent_id: str) -> str:
    """The open elicitations an agent asked (entries put on create, deleted when final)."""
    return f"elicitations-asked#{agent_id}"


def pending_model(agent_id: str) -> str:
    return f"{PENDING_MODEL}#{agent_id}"


def answered_model(agent_id: str) -> str:
    """What an agent answered (accepted or declined), newest first: the console's inbox history."""
    return f"elicitations-answered#{agent_id}"


def answered_key(finished_at: float, elicitation_id: str) -> str:
    return f"{_NEWEST_FIRST_MS - int(finished_at * 1000):013d}#{elicitation_id}"


def answered_entry(state: ElicitationState) -> dict[str, Any]:
    """The answer as its responder sees it later; `salt` stays server-side (it keys the signature)."""
    return {
        "elicitation_id": state.elicitation_id,
        "from_agent": state.from_agent,
        "message": state.message,
        "status": state.status,
        "finished_at": state.finished_at,
        "response": state.response.model_dump(mode="json") if state.response else None,
        "salt": state.salt,
    }


def inbox_entry(state: ElicitationState) -> dict[str, Any]:
    return {
        "elicitation_id": state.elicitation_id,
        "from_agent": state.from_agent,
        "to_agent": state.to_agent,
        "message": state.message,
        "schema": state.schema_,
        "priority": state.priority,
        "created_at": state.created_at,
        "expires_at": state.expires_at,
    }


class ElicitationRecords:
    """The inline read models of elicitations (an `Inline[ElicitationState]` for the command path)."""

    def __init__(self, client: Any, read_models_table: str, events_table: str) -> None:
        self._client = client
        self._table = read_models_table
        self._events_table = events_table

    def _key(self, model: str, key: str) -> dict[str, Any]:
        return {"model": {"S": model}, "key": {"S": key}}

    def load(self, stream: str) -> tuple[ElicitationState, int]:
        elicitation_id = stream.removeprefix("elicitation#")
        item = self._client.get_item(
            TableName=self._table, Key=self._key(STATE_MODEL, elicitation_id), ConsistentRead=True
        ).get("Item")
        if not item or "doc" not in item:
            return ElicitationState(), 0
        state = ElicitationState.model_validate(json.loads(item["doc"]["S"]))
        token = item.get("task_token", {}).get("S")
        return state.model_copy(update={"task_token": token}), int(item["revision"]["N"])

    def writes(
        self, stream: str, before: tuple[ElicitationState, int], after: tuple[ElicitationState, int]
    ) -> list[Action]:
        (old, old_version), (new, new_version) = before, after
        item: dict[str, Any] = {
            **self._key(STATE_MODEL, new.elicitation_id),
            "doc": {"S": json.dumps(new.model_dump(mode="json", by_alias=True, exclude={"task_token"}))},
            "revision": {"N": str(new_version)},
            "applied": {"S": json.dumps({stream: new_version})},
            "status": {"S": new.status},
        }
        put: dict[str, Any] = {"TableName": self._table, "Item": item}
        if old_version == 0:
            put["ConditionExpression"] = "attribute_not_exists(#k)"
            put["ExpressionAttributeNames"] = {"#k": "key"}
        else:
            # The execution may record its token between our read and this write: then we lose.
            put["ConditionExpression"] = "revision = :v AND " + (
                "task_token = :t" if old.task_token else "attribute_not_exists(task_token)"
            )
            put["ExpressionAttributeValues"] = {":v": {"N": str(old_version)}}
            if old.task_token:
                item["task_token"] = {"S": old.task_token}
                put["ExpressionAttributeValues"][":t"] = {"S": old.task_token}
        return [{"Put": put}, *self._listings(old, new)]

    def _listings(self, old: ElicitationState, new: ElicitationState) -> list[Action]:
        """The question in its target's inbox and its requester's asked list while it is open."""
        keys = (
            self._key(pending_model(new.to_agent), new.elicitation_id),
            self._key(asked_model(new.from_agent), new.elicitation_id),
        )
        if not old.exists and not new.final:
            document = {"S": json.dumps(inbox_entry(new))}
            items = [{**key, "doc": document, "revision": {"N": "1"}, "applied": {"S": "{}"}} for key in keys]
            return [{"Put": {"TableName": self._table, "Item": item}} for item in items]
        if new.final and old.exists and not old.final:
            deletes: list[Action] = [{"Delete": {"TableName": self._table, "Key": key}} for key in keys]
            return deletes + self._answered(new)
        return []

    def _answered(self, state: ElicitationState) -> list[Action]:
        """An answered question (not an expired or cancelled one) in its responder's history."""
        if state.response is None:
            return []
        key = self._key(answered_model(state.to_agent), answered_key(state.finished_at or 0.0, state.elicitation_id))
        item = {**key, "doc": {"S": json.dumps(answered_entry(state))}, "revision": {"N": "1"}, "applied": {"S": "{}"}}
        return [{"Put": {"TableName": self._table, "Item": item}}]

    def agent_registered(self, agent_id: str) -> Action:
        """A check, in the append's transaction, that the agent has a registration (its stream's
        first event), so a question to nobody stores nothing."""
        return {
            "ConditionCheck": {
                "TableName": self._events_table,
                "Key": {"stream_id": {"S": f"agent#{agent_id}"}, "version": {"N": "1"}},
                "ConditionExpression": "attribute_exists(stream_id)",
            }
        }

    def record_wait(self, elicitation_id: str, task_token: str) -> bool:
        """Keep the waiting execution's token on the state document while the elicitation is open;
        False if it has already ended (or does not exist): then nobody will resume it."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(STATE_MODEL, elicitation_id),
                UpdateExpression="SET task_token = :t",
                ConditionExpression="#s = :pending",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":t": {"S": task_token}, ":pending": {"S": "pending"}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def inbox(self, agent_id: str) -> list[dict[str, Any]]:
        """Every open question addressed to the agent (one Query; inboxes are small)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "#m = :m",
            "ExpressionAttributeNames": {"#m": "model"},
            "ExpressionAttributeValues": {":m": {"S": pending_model(agent_id)}},
            "ConsistentRead": True,
        }
        entries: list[dict[str, Any]] = []
        while True:
            page = self._client.query(**kwargs)
            entries.extend(json.loads(item["doc"]["S"]) for item in page.get("Items", []) if "doc" in item)
            if "LastEvaluatedKey" not in page:
                return entries
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
