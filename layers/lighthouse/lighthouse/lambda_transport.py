"""HTTP to the API function without its gateway: a `requests` transport that sends each request as
a Lambda invocation of the API function with the API Gateway proxy event it would have received.

The MCP function uses it so that its tools are the same client calls `lighthouse mcp` makes over
HTTP, authorised by the API itself with the caller's own token, without knowing the API's URL (on
AWS the MCP function cannot name the REST API that fronts the API function's routes without a
dependency cycle; locally both run in the same embedded cloud).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

SCHEME = "lambda://"


def match(templates: tuple[str, ...], path: str) -> tuple[str, dict[str, str]] | None:
    """The route template `path` is an instance of (literal segments before parameters), and its
    parameters: what API Gateway hands the function as `resource` and `pathParameters`."""
    parts = path.rstrip("/").split("/")
    ordered = sorted(templates, key=lambda t: [segment.startswith("{") for segment in t.split("/")])
    for template in ordered:
        segments = template.split("/")
        if len(segments) != len(parts):
            continue
        captured: dict[str, str] = {}
        for expected, actual in zip(segments, parts, strict=True):
            if expected.startswith("{") and actual:
                captured[expected.strip("{}")] = unquote(actual)
            elif expected != unquote(actual):
                break
        else:
            return template, captured
    return None


class LambdaInvokeAdapter(BaseAdapter):
    def __init__(
        self, lambda_client: Any, function_name: str, routes: tuple[str, ...], source_ip: str = "127.0.0.1"
    ) -> None:
        super().__init__()
        self._lambda = lambda_client
        self._function = function_name
        self._routes = routes
        self._source_ip = source_ip

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(str(request.url))
        matched = match(self._routes, parts.path)
        if matched is None:
            raise requests.ConnectionError(f"{parts.path} is not a route this transport knows")
        event = proxy_event(request, matched, self._source_ip)
        invoked = self._lambda.invoke(FunctionName=self._function, Payload=json.dumps(event).encode())
        return _response(request, invoked)

    def close(self) -> None:
        return None


def proxy_event(
    request: requests.PreparedRequest, matched: tuple[str, dict[str, str]], source_ip: str
) -> dict[str, Any]:
    """The API Gateway (REST, proxy integration) event of `request` on the route `matched`."""
    parts = urlsplit(str(request.url))
    raw = request.body
    body = raw.encode() if isinstance(raw, str) else bytes(raw or b"")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    headers = {name: str(value) for name, value in request.headers.items()}
    resource, parameters = matched
    return {
        "resource": resource,
        "path": unquote(parts.path),
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
        "pathParameters": parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": request.method,
            "path": parts.path,
            "stage": "Prod",
            "requestId": uuid.uuid4().hex,
            "identity": {"sourceIp": source_ip},
        },
        "body": base64.b64encode(body).decode() if body else None,
        "isBase64Encoded": bool(body),
    }


def _response(request: requests.PreparedRequest, invoked: dict[str, Any]) -> requests.Response:
    """The function's proxy result as the HTTP response API Gateway would have sent (502 if it failed)."""
    payload = json.loads(invoked["Payload"].read() or b"{}")
    response = requests.Response()
    response.request = request
    response.url = str(request.url)
    if invoked.get("FunctionError") or not isinstance(payload, dict):
        response.status_code = 502
        response._content = json.dumps(
            {"error": {"code": "BAD_GATEWAY", "message": "the API function failed", "details": {}}}
        ).encode()
        return response
    response.status_code = int(payload.get("statusCode", 502))
    response.headers = CaseInsensitiveDict(payload.get("headers") or {})
    raw = payload.get("body") or ""
    response._content = base64.b64decode(raw) if payload.get("isBase64Encoded") else str(raw).encode()
    return response


def session_for(lambda_client: Any, function_name: str, routes: tuple[str, ...]) -> requests.Session:
    session = requests.Session()
    session.mount(SCHEME, LambdaInvokeAdapter(lambda_client, function_name, routes))
    return session
