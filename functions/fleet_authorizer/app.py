"""IoT Core custom authorizer: an MQTT CONNECT with the password POST /fleet/mqtt-credentials gave
is accepted, with a policy that scopes the account to its own topics (lighthouse.fleet.contract)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from lighthouse.composition import Components, lazy_root
from lighthouse.fleet.iot_policy import policy_for
from lighthouse.fleet.service import FleetService
from lighthouse.logs import logger as logger_for
from lighthouse.observability import instrumented

logger = logger_for("lighthouse-fleet-authorizer")
DENY: dict[str, Any] = {"isAuthenticated": False}


def compose(parts: Components) -> FleetService:
    return parts.fleet


def _credentials(event: dict[str, Any]) -> tuple[str, str] | None:
    mqtt = (event.get("protocolData") or {}).get("mqtt") or {}
    username, password = mqtt.get("username"), mqtt.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return None
    try:
        decoded = base64.b64decode(password, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    # A client may append `?x-amz-customauthorizer-name=...` to its username to pick this authorizer.
    return username.split("?", 1)[0], decoded


def create_handler(fleet: Callable[[], FleetService]) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        credentials = _credentials(event)
        if credentials is None:
            return DENY
        username, password = credentials
        principal = fleet().authorize(username, password)
        if principal is None:
            logger.info("refused an MQTT connection", extra={"username": username[:128]})
            return DENY
        arn_parts = str(getattr(context, "invoked_function_arn", "arn:aws:lambda:us-east-1:000000000000:x")).split(":")
        policy = policy_for(username, principal.role == "admin", arn_parts[3], arn_parts[4], arn_parts[1])
        return {
            "isAuthenticated": True,
            "principalId": username.replace(":", "_").replace(".", "_")[:128],
            "disconnectAfterInSeconds": max(300, min(86400, principal.expires_at - principal.issued_at)),
            "refreshAfterInSeconds": 300,
            "policyDocuments": [json.dumps(policy)],
        }

    return handler


handler = instrumented(logger, create_handler(lazy_root(compose)))
