"""Step Functions task tokens: recorded per wait, used to resume the execution that waits on them."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

# A wait may be resumed by the answer and by the step that records the token; the second
# resume finds the task already closed, which is not an error.
_CLOSED_TASK_ERRORS = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}


class TaskTokens:
    def __init__(self, dynamodb: Any, table: str, stepfunctions: Any) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._stepfunctions = stepfunctions

    def record(self, wait_id: str, task_token: str, expires_at: float) -> None:
        self._dynamodb.put_item(
            TableName=self._table,
            Item={
                "wait_id": {"S": wait_id},
                "task_token": {"S": task_token},
                "expires_at": {"N": str(int(expires_at) + 86_400)},
            },
        )

    def token(self, wait_id: str) -> str | None:
        item = self._dynamodb.get_item(TableName=self._table, Key={"wait_id": {"S": wait_id}}, ConsistentRead=True).get(
            "Item"
        )
        return str(item["task_token"]["S"]) if item else None

    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        """Complete the waiting task; False if it had already been closed."""
        try:
            self._stepfunctions.send_task_success(taskToken=task_token, output=json.dumps(output))
        except ClientError as error:
            if error.response["Error"]["Code"] in _CLOSED_TASK_ERRORS:
                return False
            raise
        return True

    def resume_wait(self, wait_id: str, output: dict[str, Any]) -> bool:
        token = self.token(wait_id)
        return self.resume(token, output) if token else False

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> None:
        """Start the execution that will wait; a second start with the same name and input is a no-op."""
        try:
            self._stepfunctions.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload))
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
