"""Signed responses: the service signs each answer with a key fixed when the question was asked.

Only the requester learns the key (in the create response), so it can check that an answer came
through Lighthouse unaltered; no other agent can produce a valid signature.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from lighthouse.auth.keys import derive
from lighthouse.elicitation.schemas import canonical_json


def response_key(master_secret: str, elicitation_id: str, salt: str) -> str:
    return derive(master_secret, "elicitation-response/v1", elicitation_id, salt).hex()


def data_hash(data: Any) -> str:
    return "" if data is None else hashlib.sha256(canonical_json(data).encode()).hexdigest()


def signing_message(elicitation_id: str, responder: str, action: str, digest: str, responded_at_ms: int) -> bytes:
    return "\n".join((elicitation_id, responder, action, digest, str(responded_at_ms))).encode()


def sign_response(key: str, elicitation_id: str, responder: str, action: str, data: Any, responded_at_ms: int) -> str:
    message = signing_message(elicitation_id, responder, action, data_hash(data), responded_at_ms)
    return hmac.new(bytes.fromhex(key), message, hashlib.sha256).hexdigest()


def verify_response(key: str, response: dict[str, Any], elicitation_id: str) -> bool:
    """What a requester runs on GET /elicitation/status/{id}'s `response` with its response key."""
    expected = sign_response(
        key,
        elicitation_id,
        response["responder"],
        response["action"],
        response.get("data"),
        response["responded_at_ms"],
    )
    return hmac.compare_digest(expected, str(response.get("signature", "")))
