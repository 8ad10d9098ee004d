"""Errors map to status codes in one place; bodies are parsed strictly."""

from __future__ import annotations

import pytest

from lighthouse import errors
from lighthouse.agents.models import HeartbeatRequest, SessionRequest
from lighthouse.http import error_response, parse_body


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.MalformedRequest("x"), 400),
        (errors.Unauthenticated("x"), 401),
        (errors.ReplayDetected("x"), 401),
        (errors.Forbidden("x"), 403),
        (errors.NotFound("x"), 404),
        (errors.AlreadyExists("x"), 409),
        (errors.ConcurrencyError("x"), 409),
        (errors.PayloadTooLarge("x"), 413),
        (errors.ValidationFailed("x"), 422),
        (errors.RateLimited("x", 7), 429),
        (errors.ConfigurationError("x"), 500),
        (errors.DependencyUnavailable("x"), 503),
        (errors.LighthouseError("x"), 500),
    ],
)
def test_every_domain_error_has_its_status(error: errors.LighthouseError, status: int) -> None:
    code, body, _ = error_response(error)
    assert code == status
    assert body == {"error": {"code": error.code, "message": "x", "details": error.details}}


def test_rate_limited_carries_retry_after_and_401_a_challenge() -> None:
    assert error_response(errors.RateLimited("slow down", 7))[2] == {"Retry-After": "7"}
    assert "WWW-Authenticate" in error_response(errors.Unauthenticated("who"))[2]


def test_invalid_json_is_400() -> None:
    with pytest.raises(errors.MalformedRequest, match="not valid JSON"):
        parse_body(HeartbeatRequest, b"{nope", 1024)


def test_a_json_array_is_400() -> None:
    with pytest.raises(errors.MalformedRequest, match="JSON object"):
        parse_body(HeartbeatRequest, b"[]", 1024)


def test_an_oversized_body_is_413() -> None:
    with pytest.raises(errors.PayloadTooLarge) as raised:
        parse_body(HeartbeatRequest, b"{" + b" " * 2000 + b"}", 1024)
    assert raised.value.details == {"limit_bytes": 1024}


def test_validation_errors_list_each_failing_field() -> None:
    with pytest.raises(errors.ValidationFailed) as raised:
        parse_body(SessionRequest, b'{"agent_id": "", "timestamp": "soon", "extra": 1}', 1024)
    paths = {field["path"] for field in raised.value.details["fields"]}
    assert {"agent_id", "timestamp", "nonce", "signature", "extra"} <= paths


def test_oversized_metadata_is_rejected() -> None:
    with pytest.raises(errors.ValidationFailed) as raised:
        parse_body(HeartbeatRequest, b'{"metadata": {"k": "' + b"x" * 5000 + b'"}}', 100_000)
    assert raised.value.details["fields"][0]["path"] == "metadata"


def test_an_empty_body_means_defaults() -> None:
    assert parse_body(HeartbeatRequest, b"", 1024) == HeartbeatRequest()
