"""Typed domain errors. Each carries a stable code; `lighthouse.http` maps them to status codes."""

from __future__ import annotations

from typing import Any


class LighthouseError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str, details: dict[str, Any] | None = None, *, code: str | None = None) -> None:
        """`code` narrows the class's code for one error (a 400 says which rule the input broke)."""
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}
        if code is not None:
            self.code = code


class ValidationFailed(LighthouseError):
    code = "VALIDATION_ERROR"


class MalformedRequest(LighthouseError):
    code = "BAD_REQUEST"


class UnsupportedMediaType(LighthouseError):
    code = "UNSUPPORTED_MEDIA_TYPE"


class PayloadTooLarge(LighthouseError):
    code = "PAYLOAD_TOO_LARGE"


class Unauthenticated(LighthouseError):
    code = "UNAUTHENTICATED"


class Forbidden(LighthouseError):
    code = "FORBIDDEN"


class NotFound(LighthouseError):
    code = "NOT_FOUND"


class AlreadyExists(LighthouseError):
    code = "ALREADY_EXISTS"


class Conflict(LighthouseError):
    code = "CONFLICT"


class ReplayDetected(LighthouseError):
    code = "REPLAY_DETECTED"


class RateLimited(LighthouseError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after_seconds: int, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, {"retry_after_seconds": retry_after_seconds, **(details or {})})
        self.retry_after_seconds = retry_after_seconds


class ConcurrencyError(LighthouseError):
    """An append lost an optimistic-concurrency race: the expected version was already taken."""

    code = "CONCURRENCY_CONFLICT"


class ConfigurationError(LighthouseError):
    """The process cannot start or serve: a required setting or secret is missing."""

    code = "CONFIG_ERROR"


class DependencyUnavailable(LighthouseError):
    code = "DEPENDENCY_UNAVAILABLE"
