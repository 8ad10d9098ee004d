"""MCP over Streamable HTTP (a function URL): Lighthouse's MCP tools for a coding agent.

The bearer token is a Lighthouse session token (POST /sessions), checked here before any tool runs;
each tool call then goes to the API function with that same token (invoked directly, see
`lighthouse.lambda_transport`), so what a caller may do is decided in one place, the API.
Stateless and JSON-answering, as a request/response Lambda must be; Mangum adapts the ASGI app.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from mangum import Mangum
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from lighthouse.apiclient import LighthouseClient
from lighthouse.auth.tokens import Principal
from lighthouse.composition import Components, lazy_root
from lighthouse.errors import Unauthenticated
from lighthouse.lambda_transport import SCHEME, session_for
from lighthouse.logs import logger as logger_for
from lighthouse.mcp_tools import ROUTES, build_server
from lighthouse.observability import instrumented

logger = logger_for("lighthouse-mcp")
logging.getLogger("mangum").setLevel(logging.WARNING)  # it logs every lifespan step at INFO
ISSUER = "https://lighthouse.invalid"  # tokens come from POST /sessions; there is no OAuth server


class SessionTokens(TokenVerifier):
    def __init__(self, authenticate: Callable[[str], Principal]) -> None:
        self._authenticate = authenticate

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            principal = self._authenticate(f"Bearer {token}")
        except Unauthenticated:
            return None
        return AccessToken(
            token=token, client_id=principal.agent_id, scopes=[principal.role], expires_at=principal.expires_at
        )


def compose(parts: Components) -> Callable[[], Mangum]:
    settings = parts.settings
    http = session_for(parts.client("lambda"), settings.api_function_name, ROUTES)

    def client_of() -> LighthouseClient:
        token = get_access_token()
        if token is None:  # the auth middleware lets no unauthenticated request reach a tool
            raise Unauthenticated("no bearer token")
        return LighthouseClient.with_token(
            f"{SCHEME}api", token.client_id, token.token, float(token.expires_at or 0), http=http
        )

    server = build_server(
        client_of,
        token_verifier=SessionTokens(parts.agents.authenticate),
        log_level="WARNING",
        auth=AuthSettings.model_validate(
            {"issuer_url": ISSUER, "resource_server_url": settings.mcp_url or f"{ISSUER}/mcp"}
        ),
    )

    def adapter() -> Mangum:
        """A fresh app per invocation: its session manager runs once, within the invocation's lifespan."""
        app = server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            # A function URL's Host is its own; callers are authenticated by their bearer token.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        return Mangum(app, lifespan="auto")

    return adapter


_root = lazy_root(compose)


def _handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # Mangum runs the app on the thread's event loop; Lambda's main thread has one, a thread of the
    # local runtime gets its own here.
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    result: dict[str, Any] = _root()()(event, context)
    return result


handler = instrumented(logger, _handle)
