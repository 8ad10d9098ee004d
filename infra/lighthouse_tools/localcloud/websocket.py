"""API Gateway's WebSocket API, locally: the template's routes served on a port of their own, each
frame run by the route's function (the same code as on AWS), and `@connections` for the functions.

The functions post to connections with boto3's `apigatewaymanagementapi` client at the API's
execute-api URL; moto serves that API (in this process, and for the worker processes through their
pipe), and `ManagementBridge` hands its POST / DELETE / GET to this gateway's open connections.
A connection that is not open answers 410 GoneException, as on AWS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import string
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from lighthouse_tools.template import TemplateError

if TYPE_CHECKING:
    from lighthouse_tools.localcloud.runtime import FunctionRuntime

logger = logging.getLogger("lighthouse.localcloud.websocket")
POST_TIMEOUT_SECONDS = 10
ROUTE_THREADS = 64


@dataclass
class WebSocketSpec:
    """The template's WebSocket API as provisioned: its id, stage and route key -> function."""

    api_id: str
    route_selection: str = "$request.body.action"
    stage: str = ""
    integrations: dict[str, str] = field(default_factory=dict)  # integration id -> function logical id
    routes: dict[str, str] = field(default_factory=dict)  # route key -> function logical id


def new_api_id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(10))


def provision(
    kind: str, logical_id: str, props: dict[str, Any], spec: WebSocketSpec | None, functions: dict[str, Any]
) -> tuple[str, WebSocketSpec | None]:
    """One AWS::ApiGatewayV2 resource (already resolved): (its physical id, the spec so far)."""
    if kind == "AWS::ApiGatewayV2::Api":
        return _api(logical_id, props, spec)
    if spec is None:
        raise TemplateError(f"{logical_id}: its WebSocket API is not provisioned yet")
    creator = {
        "AWS::ApiGatewayV2::Integration": _integration,
        "AWS::ApiGatewayV2::Route": _route,
        "AWS::ApiGatewayV2::Stage": _stage,
        "AWS::ApiGatewayV2::Deployment": lambda *args: uuid.uuid4().hex[:6],
    }.get(kind)
    if creator is None:
        raise TemplateError(f"{logical_id}: resource type {kind} is not supported by the local cloud")
    return creator(logical_id, props, spec, functions), spec


def _api(logical_id: str, props: dict[str, Any], spec: WebSocketSpec | None) -> tuple[str, WebSocketSpec]:
    if props.get("ProtocolType") != "WEBSOCKET":
        raise TemplateError(
            f"{logical_id}: only WebSocket APIs are emulated (ProtocolType {props.get('ProtocolType')})"
        )
    if spec is not None:
        raise TemplateError(f"{logical_id}: the local cloud serves one WebSocket API")
    created = WebSocketSpec(new_api_id(), props.get("RouteSelectionExpression", "$request.body.action"))
    return created.api_id, created


def _integration(logical_id: str, props: dict[str, Any], spec: WebSocketSpec, functions: dict[str, Any]) -> str:
    uri = str(props.get("IntegrationUri", ""))
    function = next((f.logical_id for f in functions.values() if f.arn in uri), None)
    if function is None:
        raise TemplateError(f"{logical_id}: integration {uri} names no provisioned function")
    integration_id = uuid.uuid4().hex[:7]
    spec.integrations[integration_id] = function
    return integration_id


def _route(logical_id: str, props: dict[str, Any], spec: WebSocketSpec, functions: dict[str, Any]) -> str:
    target = str(props.get("Target", ""))
    integration_id = target.removeprefix("integrations/")
    if integration_id not in spec.integrations:
        raise TemplateError(f"{logical_id}: target {target} is not a provisioned integration")
    spec.routes[str(props["RouteKey"])] = spec.integrations[integration_id]
    return uuid.uuid4().hex[:7]


def _stage(logical_id: str, props: dict[str, Any], spec: WebSocketSpec, functions: dict[str, Any]) -> str:
    spec.stage = str(props["StageName"])
    return spec.stage


class Gone(Exception):
    """The connection is not open (API Gateway's 410 GoneException)."""


@dataclass
class _Open:
    socket: Any  # websockets.asyncio.server.ServerConnection
    connected_at: float
    source_ip: str
    user_agent: str


class LocalWebSocketGateway:
    """The WebSocket API on `ws://host:port/<stage>`; start() serves it on a thread of its own."""

    def __init__(self, runtime: FunctionRuntime, spec: WebSocketSpec, host: str, port: int = 0) -> None:
        self._runtime = runtime
        self.spec = spec
        self._host = host
        self._port = port
        self._open: dict[str, _Open] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="websocket-api", daemon=True)
        self._routes = ThreadPoolExecutor(ROUTE_THREADS, thread_name_prefix="websocket-route")
        self._running: set[asyncio.Future[Any]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://{self._host}:{self.port}/{self.spec.stage}"

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._open)

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> LocalWebSocketGateway:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the local WebSocket API did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and self._server is not None:
            future = asyncio.run_coroutine_threadsafe(self._close(), loop)
            with contextlib.suppress(Exception):
                future.result(10)
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._routes.shutdown(wait=False, cancel_futures=True)

    async def _close(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    def _run(self) -> None:
        from websockets.asyncio.server import serve

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def start(port: int) -> None:
            self._server = await serve(
                self._serve,
                self._host,
                port,
                process_request=self._connect,
                select_subprotocol=_select_subprotocol,
                max_size=128 * 1024,  # API Gateway's frame limit is 32 KB, its message limit 128 KB
                ping_interval=None,  # API Gateway does not ping; idle connections close after 10 min there
            )
            self.port = self._server.sockets[0].getsockname()[1]

        try:
            loop.run_until_complete(start(self._port))
        except OSError as error:
            if not self._port:
                raise
            # Another platform (or a test's) holds the default port: take a free one, the state file says which.
            logger.warning("WebSocket port %s is taken (%s); using a free port", self._port, error)
            loop.run_until_complete(start(0))
        self._ready.set()
        loop.run_forever()
        loop.close()

    # ---- one connection -----------------------------------------------------------------------

    async def _connect(self, connection: Any, request: Any) -> Any:
        """The handshake: the path must be the stage; $connect decides (a non-2xx refuses it)."""
        path, _, query = request.path.partition("?")
        if path.rstrip("/") != f"/{self.spec.stage}":
            return connection.respond(404, f"no WebSocket API at {path[:100]}; connect to /{self.spec.stage}\n")
        connection_id = _connection_id()
        connection.lighthouse_id = connection_id
        headers = {name: value for name, value in request.headers.raw_items()}
        event = self._event("$connect", "CONNECT", connection_id, connection)
        event["headers"] = headers
        event["multiValueHeaders"] = {name: [value] for name, value in headers.items()}
        event["queryStringParameters"] = _query(query)
        result = await self._invoke("$connect", event)
        status = int(result.get("statusCode", 200)) if isinstance(result, dict) else 502
        if not 200 <= status < 300:
            body = result.get("body") if isinstance(result, dict) else None
            return connection.respond(status, (body or "refused by $connect") + "\n")
        return None

    async def _serve(self, connection: Any) -> None:
        connection_id = connection.lighthouse_id
        with self._lock:
            self._open[connection_id] = _Open(
                connection, time.time(), _peer(connection), connection.request.headers.get("User-Agent", "")
            )
        try:
            async for message in connection:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                event = self._event(self._route_of(text), "MESSAGE", connection_id, connection)
                event["body"] = text
                event["isBase64Encoded"] = False
                # Frames are not ordered by the gateway on AWS either: each runs as it comes.
                task = asyncio.ensure_future(self._invoke(event["requestContext"]["routeKey"], event))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
        except Exception as error:  # a broken client connection ends like a closed one
            logger.debug("connection %s ended: %s", connection_id, error)
        finally:
            with self._lock:
                self._open.pop(connection_id, None)
            await self._invoke("$disconnect", self._event("$disconnect", "DISCONNECT", connection_id, connection))

    def _route_of(self, text: str) -> str:
        """`$request.body.action`: the route named by the message's `action`, else $default."""
        field_name = self.spec.route_selection.removeprefix("$request.body.")
        try:
            action = json.loads(text).get(field_name)
        except (ValueError, AttributeError):
            action = None
        return action if isinstance(action, str) and action in self.spec.routes else "$default"

    async def _invoke(self, route_key: str, event: dict[str, Any]) -> Any:
        function = self.spec.routes.get(route_key)
        if function is None:
            return {"statusCode": 200}
        loop = asyncio.get_running_loop()
        invocation = await loop.run_in_executor(self._routes, self._runtime.invoke, function, event)
        return None if invocation.failed else invocation.payload

    def _event(self, route_key: str, event_type: str, connection_id: str, connection: Any) -> dict[str, Any]:
        now = time.time()
        return {
            "requestContext": {
                "routeKey": route_key,
                "eventType": event_type,
                "connectionId": connection_id,
                "messageId": uuid.uuid4().hex[:16],
                "extendedRequestId": uuid.uuid4().hex,
                "requestId": uuid.uuid4().hex,
                "apiId": self.spec.api_id,
                "stage": self.spec.stage,
                "domainName": f"{self._host}:{self.port}",
                "connectedAt": int(now * 1000),
                "requestTimeEpoch": int(now * 1000),
                "identity": {"sourceIp": _peer(connection)},
            },
            "isBase64Encoded": False,
        }

    # ---- @connections -------------------------------------------------------------------------

    def post(self, connection_id: str, data: bytes) -> None:
        opened = self._opened(connection_id)
        assert self._loop is not None
        payload: str | bytes
        try:
            payload = data.decode("utf-8")
        except UnicodeDecodeError:
            payload = data
        future = asyncio.run_coroutine_threadsafe(opened.socket.send(payload), self._loop)
        try:
            future.result(POST_TIMEOUT_SECONDS)
        except Exception as error:
            raise Gone(connection_id) from error

    def close(self, connection_id: str) -> None:
        opened = self._opened(connection_id)
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(opened.socket.close(1000, "closed by the server"), self._loop)

    def describe(self, connection_id: str) -> dict[str, Any]:
        opened = self._opened(connection_id)
        return {
            "connectedAt": opened.connected_at,
            "lastActiveAt": time.time(),
            "identity": {"sourceIp": opened.source_ip, "userAgent": opened.user_agent},
        }

    def _opened(self, connection_id: str) -> _Open:
        with self._lock:
            opened = self._open.get(connection_id)
        if opened is None:
            raise Gone(connection_id)
        return opened


def _select_subprotocol(connection: Any, offered: Any) -> Any:
    """The subprotocol browsers send their token with (lighthouse.push.service.token_of)."""
    return "lighthouse.v1" if "lighthouse.v1" in offered else None


def _connection_id() -> str:
    # API Gateway's ids are 16 characters of base64 ending in '='.
    return secrets.token_urlsafe(12)[:15] + "="


def _peer(connection: Any) -> str:
    address = getattr(connection, "remote_address", None)
    return str(address[0]) if address else "127.0.0.1"


def _query(query: str) -> dict[str, str] | None:
    pairs = dict(parse_qsl(query, keep_blank_values=True))
    return pairs or None


class ManagementBridge:
    """Routes moto's apigatewaymanagementapi (POST / DELETE / GET @connections) to the gateway."""

    def __init__(self) -> None:
        self.gateway: LocalWebSocketGateway | None = None
        self._originals: dict[str, Any] = {}

    def install(self, gateway: LocalWebSocketGateway) -> None:
        from moto.apigatewaymanagementapi.models import ApiGatewayManagementApiBackend
        from moto.core.exceptions import JsonRESTError

        self.gateway = gateway
        if self._originals:
            return
        bridge = self

        class GoneException(JsonRESTError):
            code = 410

            def __init__(self, connection_id: str) -> None:
                super().__init__("GoneException", f"connection {connection_id} is gone")

        def live() -> LocalWebSocketGateway:
            if bridge.gateway is None:
                raise GoneException("-")
            return bridge.gateway

        def post_to_connection(backend: Any, data: bytes, connection_id: str) -> None:
            connection_id = unquote(connection_id)
            try:
                live().post(connection_id, data)
            except Gone:
                raise GoneException(connection_id) from None

        def delete_connection(backend: Any, connection_id: str) -> None:
            connection_id = unquote(connection_id)
            try:
                live().close(connection_id)
            except Gone:
                raise GoneException(connection_id) from None

        def get_connection(backend: Any, connection_id: str) -> Any:
            connection_id = unquote(connection_id)
            try:
                description = live().describe(connection_id)
            except Gone:
                raise GoneException(connection_id) from None
            return _Described(description)

        for name, replacement in (
            ("post_to_connection", post_to_connection),
            ("delete_connection", delete_connection),
            ("get_connection", get_connection),
        ):
            self._originals[name] = getattr(ApiGatewayManagementApiBackend, name)
            setattr(ApiGatewayManagementApiBackend, name, replacement)

    def uninstall(self) -> None:
        from moto.apigatewaymanagementapi.models import ApiGatewayManagementApiBackend

        for name, original in self._originals.items():
            setattr(ApiGatewayManagementApiBackend, name, original)
        self._originals = {}
        self.gateway = None


@dataclass(frozen=True)
class _Described:
    description: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.description


bridge = ManagementBridge()
