"""LLM providers behind one interface: `generate` (one answer) and `stream` (chunks, then the answer).

OpenAI-compatible chat completions, Anthropic Messages, Ollama's chat API, Bedrock Converse, and a
`scripted` provider that answers from canned responses (offline demos and tests). Every failure is a
`ProviderError` with a category: `config` for what a retry cannot fix (authentication, a rejected
request), `llm` for what one may (rate limits, server errors, timeouts, unreadable answers).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import requests

ProviderName = Literal["scripted", "openai", "anthropic", "ollama", "bedrock"]
DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "ollama": "http://127.0.0.1:11434",
}


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class StreamEvent:
    text: str = ""
    completion: Completion | None = None  # set on the last event


class ProviderError(Exception):
    def __init__(self, category: Literal["llm", "config"], message: str) -> None:
        super().__init__(message)
        self.category = category
        self.message = message


def estimate_tokens(text: str) -> int:
    """About four characters a token: used where a provider reports no usage (scripted)."""
    return max(1, (len(text) + 3) // 4)


class Provider:
    def __init__(
        self,
        name: ProviderName,
        model: str,
        *,
        api_key: str = "",
        base_url: str | None = None,
        timeout_seconds: float = 60.0,
        responses: Sequence[str] = (),
        bedrock_client: Any = None,
        session: requests.Session | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self._key = api_key
        self._base = (base_url or DEFAULT_BASE_URLS.get(name, "")).rstrip("/")
        self._timeout = timeout_seconds
        self._responses = list(responses)
        self._bedrock = bedrock_client
        self._http = session or requests.Session()

    # ---- one answer ------------------------------------------------------------------------------

    def generate(self, messages: Sequence[Message], call_index: int = 0) -> Completion:
        """`call_index` picks the scripted answer (the n-th call of a stage gets the n-th response)."""
        if self.name == "scripted":
            if not self._responses:
                raise ProviderError("config", "the scripted provider has no responses")
            text = self._responses[min(call_index, len(self._responses) - 1)]
            return Completion(text, sum(estimate_tokens(m.content) for m in messages), estimate_tokens(text))
        if self.name == "bedrock":
            return self._bedrock_converse(messages)
        body = self._post(self._url(), self._body(messages, stream=False))
        try:
            return self._completion(body)
        except (KeyError, IndexError, TypeError) as error:
            raise ProviderError("llm", f"{self.name} answered in an unexpected shape: {error}") from error

    def _completion(self, body: dict[str, Any]) -> Completion:
        if self.name == "openai":
            usage = body.get("usage") or {}
            return Completion(
                str(body["choices"][0]["message"]["content"] or ""),
                int(usage.get("prompt_tokens", 0)),
                int(usage.get("completion_tokens", 0)),
            )
        if self.name == "anthropic":
            usage = body.get("usage") or {}
            text = "".join(b.get("text", "") for b in body["content"] if b.get("type") == "text")
            return Completion(text, int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)))
        return Completion(
            str(body["message"]["content"]), int(body.get("prompt_eval_count", 0)), int(body.get("eval_count", 0))
        )

    def _bedrock_converse(self, messages: Sequence[Message]) -> Completion:
        system = [{"text": m.content} for m in messages if m.role == "system"]
        turns = [{"role": m.role, "content": [{"text": m.content}]} for m in messages if m.role != "system"]
        try:
            response = self._bedrock.converse(modelId=self.model, system=system, messages=turns)
        except Exception as error:
            code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
            category: Literal["llm", "config"] = (
                "config" if code in ("AccessDeniedException", "ValidationException") else "llm"
            )
            raise ProviderError(category, f"bedrock: {type(error).__name__}: {error}") from error
        usage = response.get("usage", {})
        text = "".join(b.get("text", "") for b in response["output"]["message"]["content"])
        return Completion(text, int(usage.get("inputTokens", 0)), int(usage.get("outputTokens", 0)))

    # ---- streaming -------------------------------------------------------------------------------

    def stream(self, messages: Sequence[Message], call_index: int = 0) -> Iterator[StreamEvent]:
        if self.name in ("scripted", "bedrock"):
            completion = self.generate(messages, call_index)
            for start in range(0, len(completion.text), 16):
                yield StreamEvent(text=completion.text[start : start + 16])
            yield StreamEvent(completion=completion)
            return
        response = self._send(self._url(), self._body(messages, stream=True), stream=True)
        parts: list[str] = []
        prompt_tokens = completion_tokens = 0
        for line in response.iter_lines(decode_unicode=True):
            if not line:
                continue
            if self.name == "ollama":
                chunk = json.loads(line)
                text = chunk.get("message", {}).get("content", "")
                if chunk.get("done"):
                    prompt_tokens, completion_tokens = chunk.get("prompt_eval_count", 0), chunk.get("eval_count", 0)
            else:
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                text, usage = self._stream_delta(chunk)
                prompt_tokens = usage.get("prompt", prompt_tokens)
                completion_tokens = usage.get("completion", completion_tokens)
            if text:
                parts.append(text)
                yield StreamEvent(text=text)
        yield StreamEvent(completion=Completion("".join(parts), int(prompt_tokens), int(completion_tokens)))

    def _stream_delta(self, chunk: dict[str, Any]) -> tuple[str, dict[str, int]]:
        """The text and token counts in one server-sent event of OpenAI's or Anthropic's stream."""
        if self.name == "openai":
            return _openai_delta(chunk)
        kind = chunk.get("type")
        if kind == "content_block_delta":
            return chunk.get("delta", {}).get("text", ""), {}
        if kind == "message_start":
            return "", {"prompt": chunk["message"].get("usage", {}).get("input_tokens", 0)}
        if kind == "message_delta":
            return "", {"completion": chunk.get("usage", {}).get("output_tokens", 0)}
        return "", {}

    # ---- HTTP ------------------------------------------------------------------------------------

    def _url(self) -> str:
        return {
            "openai": f"{self._base}/chat/completions",
            "anthropic": f"{self._base}/v1/messages",
            "ollama": f"{self._base}/api/chat",
        }[self.name]

    def _body(self, messages: Sequence[Message], stream: bool) -> dict[str, Any]:
        if self.name == "anthropic":
            system = "\n\n".join(m.content for m in messages if m.role == "system")
            turns = [{"role": m.role, "content": m.content} for m in messages if m.role != "system"]
            return {"model": self.model, "max_tokens": 2048, "system": system, "messages": turns, "stream": stream}
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": stream,
        }
        if self.name == "openai" and stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _headers(self) -> dict[str, str]:
        if self.name == "anthropic":
            return {"x-api-key": self._key, "anthropic-version": "2023-06-01"}
        return {"Authorization": f"Bearer {self._key}"} if self._key else {}

    def _send(self, url: str, body: dict[str, Any], stream: bool = False) -> requests.Response:
        try:
            response = self._http.post(url, json=body, headers=self._headers(), timeout=self._timeout, stream=stream)
        except requests.Timeout as error:
            raise ProviderError("llm", f"{self.name} did not answer within {self._timeout} s") from error
        except requests.RequestException as error:
            raise ProviderError("llm", f"{self.name} is unreachable: {type(error).__name__}") from error
        if response.status_code in (400, 401, 403, 404):
            raise ProviderError(
                "config", f"{self.name} refused the request: HTTP {response.status_code} {response.text[:200]}"
            )
        if response.status_code != 200:
            raise ProviderError("llm", f"{self.name} failed: HTTP {response.status_code} {response.text[:200]}")
        return response

    def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._send(url, body)
        try:
            parsed: dict[str, Any] = response.json()
        except ValueError as error:
            raise ProviderError("llm", f"{self.name} answered with something that is not JSON") from error
        return parsed


def _openai_delta(chunk: dict[str, Any]) -> tuple[str, dict[str, int]]:
    usage = chunk.get("usage") or {}
    choices = chunk.get("choices") or [{}]
    text = (choices[0].get("delta") or {}).get("content") or ""
    names = (("prompt", "prompt_tokens"), ("completion", "completion_tokens"))
    return text, {ours: usage[theirs] for ours, theirs in names if theirs in usage}
