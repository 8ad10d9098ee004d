"""A small HTTP client for the Lighthouse API, as an agent program uses it (the MCP servers do:
`lighthouse mcp` over stdio with an agent's secret, the MCP function with each caller's token)."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import requests

from lighthouse.auth.keys import sign_session_request

# Renew the bearer token this long before it expires.
RENEW_MARGIN_SECONDS = 120


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(f"{status} {error.get('code', '')}: {error.get('message', body)}")
        self.status = status
        self.code = str(error.get("code", ""))
        self.body = body


class LighthouseClient:
    """Signs in once per token lifetime. With `session_file`, the token is kept there (mode 0600)
    for the next process: the CLI runs one process per command, and signing in for each would spend
    the sign-in budget (30 a minute per agent) a script of admin commands needs."""

    def __init__(
        self,
        api_url: str,
        agent_id: str,
        secret: str,
        timeout: float = 30.0,
        session_file: Path | None = None,
        http: requests.Session | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.agent_id = agent_id
        self._secret = secret
        self._timeout = timeout
        self._http = http or requests.Session()
        self._token = ""
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self._session_file = session_file
        self.long_polls = 0  # requests that held the API waiting (?wait=N > 0): what push saves

    @classmethod
    def with_token(
        cls, api_url: str, agent_id: str, token: str, expires_at: float, http: requests.Session | None = None
    ) -> LighthouseClient:
        """A client that acts with a bearer token it was given (it cannot sign in again)."""
        client = cls(api_url, agent_id, "", http=http)
        client._token, client._expires_at = token, expires_at
        return client

    def _ensure_session(self) -> None:
        with self._lock:
            if not self._token:
                self._load_session()
            if self._token and time.time() < self._expires_at - RENEW_MARGIN_SECONDS:
                return
            if not self._secret:
                return  # a given token: used as it is until it expires (the API answers 401 then)
            self._sign_in()

    def _load_session(self) -> None:
        if self._session_file is None:
            return
        try:
            kept = json.loads(self._session_file.read_text())
        except (OSError, ValueError):
            return
        if isinstance(kept, dict) and (kept.get("api_url"), kept.get("agent_id")) == (self.api_url, self.agent_id):
            self._token, self._expires_at = str(kept.get("token", "")), float(kept.get("expires_at", 0))

    def _keep_session(self) -> None:
        if self._session_file is None:
            return
        kept = {
            "api_url": self.api_url,
            "agent_id": self.agent_id,
            "token": self._token,
            "expires_at": self._expires_at,
        }
        staging = self._session_file.with_name(f".{self._session_file.name}.{os.getpid()}")
        descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(kept, file)
        staging.replace(self._session_file)

    def _forget_session(self) -> None:
        with self._lock:
            self._token, self._expires_at = "", 0.0
            if self._session_file is not None:
                self._session_file.unlink(missing_ok=True)

    def _sign_in(self) -> None:
        timestamp, nonce = int(time.time()), secrets.token_hex(16)
        body = {
            "agent_id": self.agent_id,
            "timestamp": timestamp,
            "nonce": nonce,
            "signature": sign_session_request(self._secret, self.agent_id, timestamp, nonce),
        }
        response = self._http.post(f"{self.api_url}/sessions", json=body, timeout=self._timeout)
        if response.status_code != 201:
            raise ApiError(response.status_code, _json(response))
        session = response.json()
        self._token, self._expires_at = session["token"], float(session["expires_at"])
        self._keep_session()

    def bearer_token(self) -> str:
        """A current session token (signing in if needed): what a WebSocket connect sends."""
        self._ensure_session()
        return self._token

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        self._ensure_session()
        response = self._send(method, path, body, headers)
        if response.status_code == 401 and self._session_file is not None:
            # A kept token the API no longer takes (revoked, another platform, a new master secret).
            self._forget_session()
            self._ensure_session()
            response = self._send(method, path, body, headers)
        if response.status_code >= 400:
            raise ApiError(response.status_code, _json(response))
        return response.json() if response.content else None

    def text(self, path: str) -> tuple[str, dict[str, str]]:
        """GET a text view (the body as text, and the response's headers)."""
        self._ensure_session()
        response = self._send("GET", path, None, None)
        if response.status_code == 401 and self._session_file is not None:
            self._forget_session()
            self._ensure_session()
            response = self._send("GET", path, None, None)
        if response.status_code >= 400:
            raise ApiError(response.status_code, _json(response))
        return response.text, dict(response.headers)

    def _send(self, method: str, path: str, body: Any, headers: dict[str, str] | None) -> requests.Response:
        return self._http.request(
            method,
            f"{self.api_url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self._token}", **(headers or {})},
            timeout=self._timeout,
        )

    # ---- elicitation ------------------------------------------------------------------------------

    def elicit(self, to_agent: str, message: str, schema: dict[str, Any], **options: Any) -> dict[str, Any]:
        body = {"to_agent": to_agent, "message": message, "schema": schema, **options}
        return dict(self.request("POST", "/elicitation/create", body))

    def pending(self, limit: int = 50, wait_seconds: int = 0) -> list[dict[str, Any]]:
        self.long_polls += wait_seconds > 0
        path = f"/elicitation/pending?limit={limit}&wait={wait_seconds}"
        return list(self.request("GET", path)["elicitations"])

    def respond(self, elicitation_id: str, action: str, data: Any = None) -> dict[str, Any]:
        body: dict[str, Any] = {"elicitation_id": elicitation_id, "action": action, "nonce": secrets.token_hex(16)}
        if data is not None:
            body["data"] = data
        return dict(self.request("POST", "/elicitation/respond", body))

    def status(self, elicitation_id: str, wait_seconds: int = 0) -> dict[str, Any]:
        self.long_polls += wait_seconds > 0
        return dict(self.request("GET", f"/elicitation/status/{elicitation_id}?wait={wait_seconds}"))

    def heartbeat(self, status: str = "ready") -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/agents/heartbeat", {"status": status})
        return result

    def keep_alive(self, stop: threading.Event, fallback_interval: float = 10.0) -> None:
        """Heartbeat until `stop` is set, at half the time the platform allows between heartbeats, so the
        agent stays online (an expert is only asked to vote while it is online)."""
        while not stop.is_set():
            interval = fallback_interval
            try:
                answer = self.heartbeat()
                interval = max(1.0, (float(answer["next_heartbeat_before"]) - float(answer["last_seen"])) / 2)
            except (ApiError, requests.RequestException, KeyError, ValueError):
                interval = fallback_interval  # the platform may be restarting: try again later
            stop.wait(interval)


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"error": {"code": "HTTP_ERROR", "message": response.text[:500]}}
    return body if isinstance(body, dict) else {"error": {"message": str(body)}}
