"""The one place that maps domain errors to HTTP, and parses bodies into pydantic models."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from lighthouse import errors, strictjson

M = TypeVar("M", bound=BaseModel)

STATUS_BY_ERROR: dict[type[errors.LighthouseError], int] = {
    errors.MalformedRequest: 400,
    errors.Unauthenticated: 401,
    errors.ReplayDetected: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.AlreadyExists: 409,
    errors.Conflict: 409,
    errors.ConcurrencyError: 409,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.ValidationFailed: 422,
    errors.RateLimited: 429,
    errors.ConfigurationError: 500,
    errors.DependencyUnavailable: 503,
}


def status_for(error: errors.LighthouseError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(error: errors.LighthouseError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, headers) for a domain error."""
    headers: dict[str, str] = {}
    if isinstance(error, errors.RateLimited):
        headers["Retry-After"] = str(error.retry_after_seconds)
    if isinstance(error, errors.Unauthenticated | errors.ReplayDetected):
        headers["WWW-Authenticate"] = 'Bearer realm="lighthouse"'
    return status_for(error), error_body(error.code, error.message, error.details), headers


def validation_details(error: ValidationError) -> dict[str, Any]:
    return {
        "fields": [
            {
                "path": ".".join(str(part) for part in item["loc"]) or "$",
                "message": item["msg"],
                "type": item["type"],
            }
            for item in error.errors(include_url=False, include_input=False)
        ]
    }


def parse_body(model: type[M], raw: bytes | str | None, max_bytes: int, where: str = "request body") -> M:
    """Strict JSON (see `strictjson`) into `model`; an empty body is `{}`, so missing fields are named."""
    return parse_object(model, strictjson.loads_object(raw, max_bytes=max_bytes, where=where, empty={}))


def parse_object(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        details = validation_details(error)
        summary = "; ".join(f"{f['path']}: {f['message']}" for f in details["fields"][:3])
        raise errors.ValidationFailed(f"request body failed validation: {summary}", details) from error
