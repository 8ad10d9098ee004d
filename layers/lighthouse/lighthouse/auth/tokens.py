"""Bearer tokens: `lh1.<payload>.<signature>`, HMAC-SHA256 signed, verifiable without I/O."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from lighthouse.errors import Unauthenticated
from lighthouse.lazy import Lazy

PREFIX = "lh1"
MAX_TOKEN_LENGTH = 2048


@dataclass(frozen=True)
class Principal:
    agent_id: str
    role: str
    issued_at: int
    expires_at: int
    token_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, key: bytes | Lazy[bytes]) -> None:
        self._key = key if isinstance(key, Lazy) else Lazy(key)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key.get(), f"{PREFIX}.{payload}".encode(), hashlib.sha256).digest())

    def issue(self, agent_id: str, role: str, now: float, lifetime_seconds: int) -> tuple[str, Principal]:
        principal = Principal(
            agent_id=agent_id,
            role=role,
            issued_at=int(now),
            expires_at=int(now) + lifetime_seconds,
            token_id=secrets.token_hex(16),  # 128-bit random nonce: two tokens never collide
        )
        body = {
            "sub": principal.agent_id,
            "role": principal.role,
            "iat": principal.issued_at,
            "exp": principal.expires_at,
            "jti": principal.token_id,
        }
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{PREFIX}.{payload}.{self._sign(payload)}", principal

    def verify(self, token: str, now: float) -> Principal:
        if len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated("malformed bearer token: too long")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
            raise Unauthenticated(f"malformed bearer token: expected '{PREFIX}.<payload>.<signature>'")
        _, payload, signature = parts
        if not hmac.compare_digest(self._sign(payload), signature):
            raise Unauthenticated("bearer token signature does not verify (tampered or from another install)")
        try:
            body = json.loads(_unb64(payload))
            principal = Principal(
                agent_id=str(body["sub"]),
                role=str(body["role"]),
                issued_at=int(body["iat"]),
                expires_at=int(body["exp"]),
                token_id=str(body["jti"]),
            )
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            raise Unauthenticated("malformed bearer token: unreadable payload") from error
        if now >= principal.expires_at:
            raise Unauthenticated(
                "bearer token expired; create a new session with POST /sessions",
                {"expired_at": principal.expires_at},
            )
        return principal

    def verify_header(self, authorization: str | None, now: float) -> Principal:
        if not authorization:
            raise Unauthenticated("missing Authorization header: send 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("malformed Authorization header: expected 'Bearer <token>'")
        return self.verify(token.strip(), now)
