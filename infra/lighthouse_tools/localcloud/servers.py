"""HTTP front ends: the AWS endpoint (moto) and the API (API Gateway in front of the Chalice app)."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from lighthouse_tools.localcloud.runtime import FunctionRuntime

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


# Encoded characters that would change how a path splits or ends if decoded before routing
# (`/`, `?`, `#`, NUL, `\`): API Gateway hands such a segment to the function decoded, where the
# id patterns refuse it; the local gateway refuses it at once, before any route is chosen.
_UNSAFE_ESCAPES = ("%2f", "%3f", "%23", "%00", "%5c")
GATEWAY_ERROR_HEADERS = {"Content-Type": "application/json"}


def _gateway_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"error": {"code": code, "message": message, "details": {}}})
    return Response(body, status=status, headers={**GATEWAY_ERROR_HEADERS, **(headers or {})})


def _wsgi_response(result: dict[str, Any]) -> Response:
    """A Lambda proxy integration's result as an HTTP response."""
    body = result.get("body") or b""
    if result.get("isBase64Encoded"):
        body = base64.b64decode(body)
    wsgi = Response(body, status=result["statusCode"])
    for name, value in (result.get("headers") or {}).items():
        wsgi.headers[name] = value
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            wsgi.headers.add(name, value)
    return wsgi


def _captured(template: list[str], parts: list[str]) -> dict[str, str] | None:
    """The path parameters if `parts` matches the resource `template`, else None. A greedy
    `{name+}` (last) takes the rest of the path, slashes included, as API Gateway's does."""
    if template[-1].endswith("+}") and len(parts) > len(template):
        parts = [*parts[: len(template) - 1], "/".join(parts[len(template) - 1 :])]
    if len(template) != len(parts):
        return None
    captured: dict[str, str] = {}
    for expected, actual in zip(template, parts, strict=True):
        if expected.startswith("{"):
            if not actual:
                return None
            captured[expected.strip("{}").rstrip("+")] = unquote(actual)
        elif unquote(actual) != expected:
            return None
    return captured


class ApiGateway:
    """API Gateway (REST, Lambda proxy integration) in front of the API function's containers.

    Routes are matched on the raw request path, segment by segment, and each segment is decoded
    only after matching, as API Gateway does; each request runs in a container of its own, as
    concurrent requests do on Lambda. The proxy event carries the caller's address as `sourceIp`.
    """

    def __init__(self, runtime: FunctionRuntime, routes: list[tuple[str, str, str]], stage: str = "Prod") -> None:
        """`routes`: (function, method, path), the template's Api events."""
        self._runtime = runtime
        self._stage = stage
        self._routes: dict[str, dict[str, str]] = {}
        for function, method, path in routes:
            self._routes.setdefault(path, {})[method] = function
        # Literal segments win over parameters, as in API Gateway (`/agents/heartbeat` before `/agents/{id}`).
        self._ordered = sorted(self._routes, key=lambda path: [part.startswith("{") for part in path.split("/")])

    def match(self, raw_path: str) -> tuple[str, dict[str, str]] | None:
        parts = raw_path.rstrip("/").split("/") if raw_path != "/" else [""]
        for resource in self._ordered:
            captured = _captured(resource.split("/"), parts)
            if captured is not None:
                return resource, captured
        return None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self._respond(request, environ)
        return response(environ, start_response)

    def _route(self, request: Request, raw_path: str) -> tuple[str, dict[str, str]] | Response:
        """The resource and its path parameters, or the gateway's own refusal."""
        lowered = raw_path.lower()
        if any(escape in lowered for escape in _UNSAFE_ESCAPES) or "/../" in f"{raw_path}/" or "\x00" in raw_path:
            return _gateway_error(400, "INVALID_PATH", "the path has an encoded '/', '?', '#', '\\', NUL or a '..'")
        matched = self.match(raw_path)
        if matched is None:
            return _gateway_error(404, "NOT_FOUND", f"no route for {raw_path[:200]}")
        if request.method not in self._routes[matched[0]]:
            allowed = ", ".join(sorted(self._routes[matched[0]]))
            return _gateway_error(
                405, "METHOD_NOT_ALLOWED", f"{request.method} is not served on {matched[0]}", {"Allow": allowed}
            )
        return matched

    def _respond(self, request: Request, environ: dict[str, Any]) -> Response:
        raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.full_path
        raw_path = raw_uri.split("?", 1)[0].split("#", 1)[0]
        routed = self._route(request, raw_path)
        if isinstance(routed, Response):
            return routed
        resource, captured = routed
        function = self._routes[resource][request.method]
        invocation = self._runtime.invoke(function, self._event(request, resource, raw_path, captured, environ))
        if invocation.failed or not isinstance(invocation.payload, dict):
            # What API Gateway answers when the integration fails.
            return _gateway_error(502, "BAD_GATEWAY", "the API function failed; see the platform's log")
        return _wsgi_response(invocation.payload)

    def _event(
        self, request: Request, resource: str, raw_path: str, captured: dict[str, str], environ: dict[str, Any]
    ) -> dict[str, Any]:
        query: dict[str, list[str]] = {}
        for name, value in parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True):
            query.setdefault(name, []).append(value)
        headers: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            headers.setdefault(name, []).append(value)
        body = request.get_data()
        path = unquote(raw_path)
        return {
            "resource": resource,
            "path": path,
            "httpMethod": request.method,
            "headers": {name: values[-1] for name, values in headers.items()},
            "multiValueHeaders": headers,
            "queryStringParameters": {name: values[-1] for name, values in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": captured or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": resource,
                "httpMethod": request.method,
                "path": f"/{self._stage}{path}",
                "stage": self._stage,
                "requestId": uuid.uuid4().hex,
                "identity": {"sourceIp": environ.get("REMOTE_ADDR", "127.0.0.1")},
            },
            # Always base64: the function must see the exact bytes, invalid UTF-8 included.
            "body": base64.b64encode(body).decode() if body else None,
            "isBase64Encoded": bool(body),
        }


class FunctionUrl:
    """A Lambda function URL in front of one function: every path and method, payload format 2.0."""

    def __init__(self, runtime: FunctionRuntime, function: str) -> None:
        self._runtime = runtime
        self._function = function

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        body = request.get_data()
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": request.path,
            "rawQueryString": request.query_string.decode("latin-1"),
            "headers": headers,
            "requestContext": {
                "http": {
                    "method": request.method,
                    "path": request.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": environ.get("REMOTE_ADDR", "127.0.0.1"),
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": uuid.uuid4().hex,
                "routeKey": "$default",
                "stage": "$default",
            },
            "body": base64.b64encode(body).decode() if body else None,
            "isBase64Encoded": bool(body),
        }
        invocation = self._runtime.invoke(self._function, event)
        if invocation.failed or not isinstance(invocation.payload, dict):
            response = _gateway_error(502, "BAD_GATEWAY", "the function failed; see the platform's log")
        else:
            response = _wsgi_response(invocation.payload)
        return response(environ, start_response)


class _NoNagle(WSGIRequestHandler):
    """Werkzeug sends a response's headers and its body in separate writes; with Nagle's algorithm on,
    the body can wait for the client's (delayed) acknowledgement of the headers. (A buffered writer
    would also coalesce the two, but would hold back werkzeug's `100 Continue`, which it writes to
    the same stream before reading the body, and stall clients that send `Expect`.)"""

    disable_nagle_algorithm = True


class ServerThread(threading.Thread):
    def __init__(self, app: WSGIApp, host: str, port: int, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.server: BaseWSGIServer = make_server(host, port, app, threaded=True, request_handler=_NoNagle)
        self.server.daemon_threads = True  # type: ignore[attr-defined]
        # Otherwise socketserver tracks every request thread and scans them all on each new request.
        self.server.block_on_close = False  # type: ignore[attr-defined]
        self.port = self.server.server_port
        self.url = f"http://{host}:{self.port}"

    def run(self) -> None:
        self.server.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
