"""HTTP front ends: the AWS endpoint (moto) and the API (API Gateway in front of the Chalice app)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from lighthouse_tools.localcloud.runtime import Container, FunctionPool

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ApiGateway:
    """Turns HTTP requests into API Gateway proxy events for the function's containers.

    Chalice's LocalGateway does the event conversion and route matching; each request runs in a
    container of its own, as concurrent requests do on Lambda.
    """

    def __init__(self, pool: FunctionPool, routes: list[tuple[str, str]], stage: str = "Prod") -> None:
        from chalice.config import Config

        self._pool = pool
        self._routes = {(method, path) for method, path in routes}
        self._config = Config.create(
            chalice_stage=stage, lambda_timeout=pool.spec.timeout, lambda_memory_size=pool.spec.memory_mb
        )
        self._gateways: dict[int, Any] = {}
        self._lock = threading.Lock()

    def _gateway(self, container: Container) -> Any:
        from chalice.local import LocalGateway

        key = id(container)
        with self._lock:
            gateway = self._gateways.get(key)
            if gateway is None:
                gateway = self._gateways[key] = LocalGateway(container.handler, self._config)
        return gateway

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        from chalice.local import LocalGatewayException

        request = Request(environ)
        path = request.full_path if request.query_string else request.path
        container = self._pool.acquire()
        try:
            response = self._gateway(container).handle_request(
                method=request.method,
                path=path,
                headers=dict(request.headers),
                body=request.get_data() or None,
            )
        except LocalGatewayException as error:
            wsgi = Response(error.body, status=error.CODE, headers=error.headers, content_type="application/json")
            return wsgi(environ, start_response)
        finally:
            self._pool.release(container)
        body = response.get("body") or b""
        if response.get("isBase64Encoded"):
            body = base64.b64decode(body)
        headers = dict(response.get("headers") or {})
        wsgi = Response(body, status=response["statusCode"])
        for name, value in headers.items():
            wsgi.headers[name] = value
        for name, values in (response.get("multiValueHeaders") or {}).items():
            for value in values:
                wsgi.headers.add(name, value)
        return wsgi(environ, start_response)


class ServerThread(threading.Thread):
    def __init__(self, app: WSGIApp, host: str, port: int, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.server: BaseWSGIServer = make_server(host, port, app, threaded=True)
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
