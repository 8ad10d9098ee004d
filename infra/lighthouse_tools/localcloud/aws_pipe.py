"""AWS calls from a worker process to the emulator over the worker's pipe instead of HTTP.

Profiled at 50 agent pairs with the workers calling the emulator over HTTP, the emulator's process
spent about 40 % of its time in the HTTP server (werkzeug parsing requests and writing responses on
a thread per connection) and 16 % in moto's Flask dispatch, against 12 % in DynamoDB itself. A
worker's botocore request is already complete when it is signed (method, URL, headers, body), so a
`before-send` handler ships it over the pipe the worker already has; the emulator hands it to moto's
in-process request handler (the one `mock_aws` uses), and the status, headers and body come back.

Worker side: `forward_every_aws_call(send)` registers the handler for every botocore client made in
the process; replies arrive through `resolve`. Emulator side: `answer(message)` runs one request.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from lighthouse_tools.localcloud import calls

# A call waits at most this long for the emulator (a synchronous Lambda invoke can take a function's
# whole timeout; the longest in the template is 900 s).
CALL_TIMEOUT_SECONDS = 960

Reply = tuple[int, dict[str, str], bytes]


class Forwarder:
    """The worker's side: sends each signed request as ("aws", id, method, url, headers, body)."""

    def __init__(self, send: Callable[[tuple[Any, ...]], None]) -> None:
        self._send = send
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[Reply]] = {}
        self._lock = threading.Lock()

    def __call__(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse

        function = calls.counter.current_function()
        if function != "-":
            request.headers[calls.FUNCTION_HEADER] = function
        call_id = next(self._ids)
        future: Future[Reply] = Future()
        with self._lock:
            self._pending[call_id] = future
        try:
            headers = {str(name): _text(value) for name, value in request.headers.items()}
            self._send(("aws", call_id, request.method, request.url, headers, _body_bytes(request.body)))
            status, reply_headers, body = future.result(timeout=CALL_TIMEOUT_SECONDS)
        finally:
            with self._lock:
                self._pending.pop(call_id, None)
        return AWSResponse(request.url, status, _headers(reply_headers), MockRawResponse(body))

    def resolve(self, call_id: int, status: int, headers: dict[str, str], body: bytes) -> None:
        with self._lock:
            future = self._pending.get(call_id)
        if future is not None and not future.done():
            future.set_result((status, headers, body))

    def fail_all(self, reason: str) -> None:
        """The emulator is gone: every waiting call fails (botocore raises it to the function)."""
        with self._lock:
            waiting = list(self._pending.values())
        for future in waiting:
            if not future.done():
                future.set_exception(ConnectionError(reason))


def forward_every_aws_call(send: Callable[[tuple[Any, ...]], None]) -> Forwarder:
    """Install a Forwarder for every botocore client this process makes from now on. Its handler
    answers every request, so no call from a worker ever reaches the network."""
    from botocore.handlers import BUILTIN_HANDLERS

    forwarder = Forwarder(send)
    BUILTIN_HANDLERS.append(("before-send", forwarder))
    return forwarder


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _headers(values: dict[str, str]) -> Any:
    from botocore.awsrequest import HTTPHeaders

    headers = HTTPHeaders()
    for name, value in values.items():
        headers[name] = value
    return headers


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    if hasattr(body, "read"):  # a stream (an S3 upload): whole, from the start, as botocore sends it
        if hasattr(body, "seek"):
            body.seek(0)  # botocore has read it already (checksums) and rewinds it to 0 to send it
        data = body.read()
        if hasattr(body, "seek"):
            body.seek(0)
        return data if isinstance(data, bytes) else str(data).encode()
    return bytes(body)


# Closed while the emulator's state is being restored from the data directory: a worker that has
# booted meanwhile waits rather than seeing the state half put back.
restored = threading.Event()
restored.set()


def answer(method: str, url: str, headers: dict[str, str], body: bytes) -> Reply:
    """Run one request in the emulator, as `mock_aws` runs an in-process client's."""
    restored.wait()
    from botocore.awsrequest import AWSPreparedRequest
    from moto.core.models import botocore_stubber

    request = AWSPreparedRequest(method=method, url=url, headers=_headers(headers), body=body, stream_output=False)
    try:
        handled = botocore_stubber.process_request(request)
    except Exception as error:  # the emulator failing on a request is the caller's 500, not ours to die of
        return 500, {"Content-Type": "text/plain"}, f"the emulator failed: {type(error).__name__}: {error}".encode()
    if handled is None:
        return 404, {"Content-Type": "text/plain"}, f"no emulated service answers {url}".encode()
    status, reply_headers, reply_body = handled
    encoded = reply_body.encode() if isinstance(reply_body, str) else bytes(reply_body or b"")
    return int(status), {str(k): str(v) for k, v in (reply_headers or {}).items()}, encoded
