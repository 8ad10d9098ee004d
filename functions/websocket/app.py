"""The WebSocket API's routes (API Gateway WebSocket -> this function): $connect authenticates the
agent's token and registers the connection, $disconnect forgets it, `subscribe` resumes feeds.

A WebSocket message has no status code: a refused message is answered on the connection with
`{"type": "error", "code", "message"}`. A refused connect answers the handshake with the status.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from lighthouse.composition import Components, lazy_root
from lighthouse.errors import LighthouseError
from lighthouse.http import error_response, validation_details
from lighthouse.logs import logger as logger_for
from lighthouse.observability import instrumented
from lighthouse.push.models import Subscribe
from lighthouse.push.service import SUBPROTOCOL, PushConnections, token_of

logger = logger_for("lighthouse-websocket")
MAX_MESSAGE_BYTES = 8 * 1024
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class Root:
    connections: PushConnections


def compose(parts: Components) -> Root:
    return Root(parts.push_connections)


def _refusal(error: LighthouseError) -> dict[str, Any]:
    status, body, headers = error_response(error)
    return {"statusCode": status, "headers": headers, "body": json.dumps(body)}


def create_handler(root: Callable[[], Root]) -> LambdaHandler:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        request = event.get("requestContext") or {}
        route, connection_id = request.get("routeKey"), str(request.get("connectionId") or "")
        if route == "$connect":
            try:
                authorization, via_subprotocol = token_of(
                    event.get("headers") or {}, event.get("queryStringParameters") or {}
                )
                root().connections.connect(connection_id, authorization)
            except LighthouseError as error:
                logger.info("connect refused", extra={"code": error.code})
                return _refusal(error)
            return {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": SUBPROTOCOL} if via_subprotocol else {}}
        if route == "$disconnect":
            root().connections.disconnect(connection_id)
            return {"statusCode": 200}
        _message(root().connections, connection_id, event.get("body") or "")
        return {"statusCode": 200}

    return handler


def _message(connections: PushConnections, connection_id: str, body: str) -> None:
    """One client message; whatever is wrong with it is answered on the connection."""
    if len(body.encode()) > MAX_MESSAGE_BYTES:
        connections.refuse(connection_id, "PAYLOAD_TOO_LARGE", f"messages are at most {MAX_MESSAGE_BYTES} bytes")
        return
    try:
        connections.subscribe(connection_id, Subscribe.model_validate_json(body))
    except ValidationError as error:
        details = validation_details(error)
        connections.refuse(
            connection_id,
            "VALIDATION_ERROR",
            'expected {"action": "subscribe", "feeds": {"agent:<you>": <last seq or null>}}: '
            + json.dumps(details)[:600],
        )
    except LighthouseError as error:
        connections.refuse(connection_id, error.code, error.message)


handler = instrumented(logger, create_handler(lazy_root(compose)))
