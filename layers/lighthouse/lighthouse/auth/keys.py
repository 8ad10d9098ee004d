"""Keys derived from the master secret, one purpose each, so no key is ever used twice."""

from __future__ import annotations

import hashlib
import hmac

MIN_MASTER_SECRET_LENGTH = 32


def derive(master_secret: str, purpose: str, *parts: str) -> bytes:
    message = "\x00".join(("lighthouse", purpose, *parts)).encode()
    return hmac.new(master_secret.encode(), message, hashlib.sha256).digest()


def agent_secret(master_secret: str, agent_id: str, salt: str) -> str:
    """The secret an agent proves it holds; re-derivable, never stored."""
    return derive(master_secret, "agent-secret/v1", agent_id, salt).hex()


def operator_secret(master_secret: str) -> str:
    """The built-in operator's secret: whoever can read the master secret can act as an admin through
    the API (it is how the first admin exists before any agent is registered)."""
    return derive(master_secret, "operator-secret/v1").hex()


def session_token_key(master_secret: str) -> bytes:
    return derive(master_secret, "session-token/v1")


def hook_token_key(master_secret: str) -> bytes:
    """Long-lived tokens a Claude Code hook sends; a session token never verifies as one, nor the reverse."""
    return derive(master_secret, "hook-token/v1")


def sign_session_request(secret: str, agent_id: str, timestamp: int, nonce: str) -> str:
    """HMAC-SHA256 an agent sends to POST /sessions, hex encoded."""
    message = f"{agent_id}\n{timestamp}\n{nonce}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def mqtt_password_key(master_secret: str) -> bytes:
    """Signs MQTT passwords (checked by IoT Core's custom authorizer); never a session or hook token."""
    return derive(master_secret, "mqtt-password/v1")


def mqtt_platform_password(master_secret: str) -> str:
    """The platform's own MQTT account (mosquitto's dynamic-security admin), set when the broker starts."""
    return derive(master_secret, "mqtt-platform/v1").hex()


def webhook_signing_key(master_secret: str) -> bytes:
    """Signs run notifications; receivers get it from GET /runs/webhook-secret (admins)."""
    return derive(master_secret, "webhook-signing/v1")
