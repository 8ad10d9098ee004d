"""The LLM adapters against local servers speaking each provider's API (generate and stream), and
how their failures map to categories. No test calls the internet."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lighthouse.providers import Message, Provider, ProviderError

pytestmark = pytest.mark.integration

MESSAGES = [Message("system", "Be brief."), Message("user", "Say hi")]


class Fake(BaseHTTPRequestHandler):
    status = 200
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Fake.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if Fake.status != 200:
            self._send(Fake.status, b'{"error": "nope"}', "application/json")
            return
        stream = body.get("stream")
        if self.path.endswith("/chat/completions"):
            if stream:
                chunks = [{"choices": [{"delta": {"content": part}}]} for part in ("Hel", "lo")]
                chunks.append({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}})
                self._sse([f"data: {json.dumps(c)}" for c in chunks] + ["data: [DONE]"])
            else:
                reply = {
                    "choices": [{"message": {"content": "Hello"}}],
                    "usage": {"prompt_tokens": 7, "completion_tokens": 2},
                }
                self._send(200, json.dumps(reply).encode(), "application/json")
        elif self.path.endswith("/v1/messages"):
            if stream:
                events = [
                    {"type": "message_start", "message": {"usage": {"input_tokens": 9}}},
                    {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hel"}},
                    {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "lo"}},
                    {"type": "message_delta", "usage": {"output_tokens": 3}},
                ]
                self._sse([f"event: {e['type']}\ndata: {json.dumps(e)}" for e in events])
            else:
                reply = {
                    "content": [{"type": "text", "text": "Hello"}],
                    "usage": {"input_tokens": 9, "output_tokens": 3},
                }
                self._send(200, json.dumps(reply).encode(), "application/json")
        else:  # Ollama: /api/chat, NDJSON when streaming
            if stream:
                lines = [{"message": {"content": "Hel"}, "done": False}, {"message": {"content": "lo"}, "done": False}]
                lines.append({"message": {"content": ""}, "done": True, "prompt_eval_count": 5, "eval_count": 4})
                self._send(200, "\n".join(json.dumps(line) for line in lines).encode(), "application/x-ndjson")
            else:
                reply = {"message": {"content": "Hello"}, "prompt_eval_count": 5, "eval_count": 4}
                self._send(200, json.dumps(reply).encode(), "application/json")

    def _sse(self, events: list[str]) -> None:
        self._send(200, ("\n\n".join(events) + "\n\n").encode(), "text/event-stream")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Fake)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(autouse=True)
def reset() -> None:
    Fake.status = 200
    Fake.seen = []


def provider(name: str, server: str) -> Provider:
    base = f"{server}/v1" if name == "openai" else server
    return Provider(name, "model-x", api_key="k-1", base_url=base, timeout_seconds=5)  # type: ignore[arg-type]


USAGE = {"openai": (7, 2), "anthropic": (9, 3), "ollama": (5, 4)}


@pytest.mark.parametrize("name", ["openai", "anthropic", "ollama"])
def test_generate_returns_the_text_and_the_token_counts(name: str, server: str) -> None:
    completion = provider(name, server).generate(MESSAGES)
    assert completion.text == "Hello"
    assert (completion.prompt_tokens, completion.completion_tokens) == USAGE[name]
    request = Fake.seen[-1]
    if name == "anthropic":
        assert request["body"]["system"] == "Be brief."
        assert request["headers"]["x-api-key"] == "k-1"
    else:
        assert request["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    if name == "openai":
        assert request["headers"]["Authorization"] == "Bearer k-1"


@pytest.mark.parametrize("name", ["openai", "anthropic", "ollama"])
def test_stream_yields_chunks_then_the_completion(name: str, server: str) -> None:
    events = list(provider(name, server).stream(MESSAGES))
    assert [e.text for e in events if e.text] == ["Hel", "lo"]
    final = events[-1].completion
    assert final is not None
    assert final.text == "Hello"
    assert (final.prompt_tokens, final.completion_tokens) == USAGE[name]


@pytest.mark.parametrize(("status", "category"), [(401, "config"), (400, "config"), (429, "llm"), (503, "llm")])
def test_failures_map_to_categories(server: str, status: int, category: str) -> None:
    Fake.status = status
    with pytest.raises(ProviderError) as failed:
        provider("openai", server).generate(MESSAGES)
    assert failed.value.category == category
    assert str(status) in failed.value.message


def test_an_unreachable_provider_is_an_llm_failure() -> None:
    with pytest.raises(ProviderError) as failed:
        Provider("ollama", "m", base_url="http://127.0.0.1:9", timeout_seconds=1).generate(MESSAGES)
    assert failed.value.category == "llm"


def test_the_scripted_provider_answers_in_order_and_streams() -> None:
    scripted = Provider("scripted", "s", responses=["first", "second"])
    assert scripted.generate(MESSAGES, call_index=0).text == "first"
    assert scripted.generate(MESSAGES, call_index=5).text == "second"
    assert "".join(e.text for e in scripted.stream(MESSAGES, call_index=1)) == "second"
    with pytest.raises(ProviderError):
        Provider("scripted", "s").generate(MESSAGES)
