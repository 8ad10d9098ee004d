"""The LLM expert against local servers that speak each provider's API (no test calls the internet):
OpenAI-compatible chat completions, Anthropic Messages and Bedrock Converse. Any failure is a block."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from lighthouse.validation.llm import LlmExpert, LlmSettings

pytestmark = pytest.mark.integration

VOTE = {"decision": "approve", "confidence": 0.7, "reasoning": "read-only", "concerns": [], "suggestions": []}


class Provider(BaseHTTPRequestHandler):
    """Answers as OpenAI, Anthropic or Bedrock by path; `Provider.script` says what to send."""

    script: dict[str, Any] = {"status": 200, "text": json.dumps(VOTE)}
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        Provider.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        text = Provider.script["text"]
        if self.path.endswith("/chat/completions"):
            payload: dict[str, Any] = {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
        elif self.path.endswith("/v1/messages"):
            payload = {"type": "message", "role": "assistant", "content": [{"type": "text", "text": text}]}
        else:  # Bedrock: POST /model/{modelId}/converse
            payload = {
                "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 10, "outputTokens": 20, "totalTokens": 30},
                "metrics": {"latencyMs": 5},
            }
        self.send_response(Provider.script["status"])
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(payload).encode())

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(autouse=True)
def script() -> None:
    Provider.script = {"status": 200, "text": json.dumps(VOTE)}
    Provider.seen = []


def expert(provider: str, server: str) -> LlmExpert:
    if provider == "bedrock":
        client = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=server)
        return LlmExpert(LlmSettings("bedrock", "anthropic.claude-3-haiku"), bedrock_client=client)
    base = f"{server}/v1" if provider == "openai" else server
    return LlmExpert(LlmSettings(provider, "some-model", api_key="k-123", base_url=base, timeout_seconds=5))  # type: ignore[arg-type]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "bedrock"])
def test_each_provider_is_asked_in_its_own_protocol_and_its_vote_counted(provider: str, server: str) -> None:
    vote = expert(provider, server).review("Bash", {"command": "ls -la"}, {"cwd": "/srv/p"})

    assert vote == VOTE
    request = Provider.seen[-1]
    if provider == "openai":
        assert request["path"] == "/v1/chat/completions"
        assert request["headers"]["Authorization"] == "Bearer k-123"
        assert "ls -la" in request["body"]["messages"][1]["content"]
    elif provider == "anthropic":
        assert request["path"] == "/v1/messages"
        assert request["headers"]["x-api-key"] == "k-123"
        assert request["headers"]["anthropic-version"] == "2023-06-01"
        assert "ls -la" in request["body"]["messages"][0]["content"]
    else:
        assert request["path"] == "/model/anthropic.claude-3-haiku/converse"
        assert "ls -la" in request["body"]["messages"][0]["content"][0]["text"]


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ({"status": 500, "text": "{}"}, "HTTP 500"),
        ({"status": 200, "text": "sure, go ahead"}, "not JSON"),
        ({"status": 200, "text": json.dumps({**VOTE, "confidence": 3})}, "between 0 and 1"),
        ({"status": 200, "text": json.dumps({**VOTE, "suggestions": ["mkfs.ext4 /dev/sda1"]})}, "dangerous command"),
    ],
)
@pytest.mark.parametrize("provider", ["openai", "anthropic", "bedrock"])
def test_any_failure_is_a_block_with_the_reason(
    provider: str, server: str, script: dict[str, Any], reason: str
) -> None:
    Provider.script = script
    vote = expert(provider, server).review("Bash", {"command": "ls"}, {})
    assert vote["decision"] == "block"
    assert vote["confidence"] == 0.0
    assert "LLM expert failed" in vote["reasoning"]
    if provider != "bedrock" or script["status"] == 200:
        assert reason in vote["reasoning"]


def test_an_unreachable_provider_is_a_block() -> None:
    vote = LlmExpert(LlmSettings("openai", "m", api_key="k", base_url="http://127.0.0.1:9", timeout_seconds=1)).review(
        "Bash", {"command": "ls"}, {}
    )
    assert vote["decision"] == "block"
    assert "ConnectionError" in vote["reasoning"]
