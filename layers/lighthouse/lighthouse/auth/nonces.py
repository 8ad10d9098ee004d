"""Nonces remembered for the replay window with a conditional put; DynamoDB TTL clears them."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from lighthouse.errors import ReplayDetected


class NonceStore:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def put(self, scope: str, nonce: str, now: float, keep_seconds: int) -> dict[str, Any]:
        """The conditional write that records `nonce` (a PutItem's arguments; a transaction's Put).

        TTL deletion lags by up to two days, so an expired record is treated as absent.
        """
        return {
            "TableName": self._table,
            "Item": {"nonce_id": {"S": f"{scope}#{nonce}"}, "expires_at": {"N": str(int(now) + keep_seconds)}},
            "ConditionExpression": "attribute_not_exists(nonce_id) OR expires_at < :now",
            "ExpressionAttributeValues": {":now": {"N": str(int(now))}},
        }

    def remember(self, scope: str, nonce: str, now: float, keep_seconds: int) -> None:
        """Record `nonce` for `scope`; raise ReplayDetected if it is already live."""
        try:
            self._client.put_item(**self.put(scope, nonce, now, keep_seconds))
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ReplayDetected("nonce already used: sign the request again with a fresh nonce") from error
            raise

    def forget(self, scope: str, nonce: str) -> None:
        """Drop a nonce whose request failed before it took effect, so that a retry is not a replay."""
        self._client.delete_item(TableName=self._table, Key={"nonce_id": {"S": f"{scope}#{nonce}"}})
