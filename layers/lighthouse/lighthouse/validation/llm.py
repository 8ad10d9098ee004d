"""The built-in LLM expert: asks a model to review a tool call and votes with its checked answer.

Providers: OpenAI-compatible chat completions, Anthropic Messages, and Bedrock (Converse).
Whatever goes wrong — transport, status, unparseable or out-of-range reply, a dangerous command
among its suggestions — the vote is `block` with the reason; it never approves by accident.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import requests

from lighthouse.providers import Message, Provider, ProviderError
from lighthouse.validation.rules import analyze_command

ExpertProvider = Literal["openai", "anthropic", "bedrock"]
DECISIONS = ("approve", "block", "modify", "escalate")
REQUIRED_FIELDS = ("decision", "confidence", "reasoning", "concerns")
DANGEROUS_PHRASES = (
    "delete everything",
    "rm -rf /",
    "format drive",
    "remove all files",
    "shutdown system",
    "disable security",
)
SYSTEM_PROMPT = """You are a security reviewer for commands and file edits that an AI coding agent wants to run.
Rules: never recommend a dangerous command; when uncertain, block or escalate to a human.
Answer with one JSON object and nothing else:
{"decision": "approve|block|modify|escalate", "confidence": <0.0-1.0>, "reasoning": "<why>",
 "concerns": ["<specific concern>"], "suggestions": ["<a safer alternative, if any>"]}"""


class LlmReplyError(Exception):
    """The model's reply is not a vote we can count."""


@dataclass(frozen=True)
class LlmSettings:
    provider: ExpertProvider
    model: str
    api_key: str = ""
    base_url: str = ""
    timeout_seconds: float = 20.0
    expert_id: str = "llm-expert"


# What the expert tells the LLM ledger of each call: (provider, model, input, output tokens, latency ms).
CallRecorder = Callable[[str, str, int, int, float], object]


class LlmExpert:
    def __init__(
        self,
        settings: LlmSettings,
        bedrock_client: Any = None,
        session: requests.Session | None = None,
        record_call: CallRecorder | None = None,
    ):
        self.expert_id = settings.expert_id
        self._settings = settings
        self._bedrock = bedrock_client
        self._http = session or requests.Session()
        self._record_call = record_call

    def review(self, tool_name: str, tool_input: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        prompt = (
            f"Tool: {tool_name}\nInput: {json.dumps(tool_input, sort_keys=True)[:8000]}\n"
            f"Context: {json.dumps(context, sort_keys=True, default=str)[:4000]}"
        )
        try:
            return check_reply(self._ask(prompt))
        except (LlmReplyError, ProviderError, KeyError, IndexError, TypeError, ValueError) as error:
            return _blocked(f"LLM expert failed: {type(error).__name__}: {error}")
        except Exception as error:
            return _blocked(f"LLM expert failed: {type(error).__name__}: {error}")

    def _ask(self, prompt: str) -> str:
        settings = self._settings
        provider = Provider(
            settings.provider,
            settings.model,
            api_key=settings.api_key,
            base_url=settings.base_url or None,
            timeout_seconds=settings.timeout_seconds,
            bedrock_client=self._bedrock,
            session=self._http,
        )
        started = time.perf_counter()
        completion = provider.generate([Message("system", SYSTEM_PROMPT), Message("user", prompt)])
        if self._record_call is not None:
            latency = (time.perf_counter() - started) * 1000
            self._record_call(
                settings.provider, settings.model, completion.prompt_tokens, completion.completion_tokens, latency
            )
        return completion.text


def check_reply(text: str) -> dict[str, Any]:
    """The model's text -> a vote, or LlmReplyError saying what is wrong with it."""
    reply = _reply_object(text)
    decision = str(reply["decision"]).lower()
    if decision not in DECISIONS:
        raise LlmReplyError(f"decision {reply['decision']!r} is not one of {', '.join(DECISIONS)}")
    confidence = reply["confidence"]
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
        raise LlmReplyError(f"confidence {confidence!r} is not a number between 0 and 1")
    concerns, suggestions = _strings(reply, "concerns"), _strings(reply, "suggestions")
    reasoning = str(reply["reasoning"])
    _refuse_dangerous_advice(decision, reasoning, suggestions)
    return {
        "decision": decision,
        "confidence": float(confidence),
        "reasoning": reasoning[:4000] or "(no reasoning given)",
        "concerns": [c[:1000] for c in concerns][:20],
        "suggestions": [s[:1000] for s in suggestions][:20],
    }


def _reply_object(text: str) -> dict[str, Any]:
    """The reply as a JSON object with every required field (a code fence around it is allowed)."""
    stripped = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    try:
        reply = json.loads(stripped)
    except ValueError as error:
        raise LlmReplyError(f"the reply is not JSON: {text[:120]!r}") from error
    if not isinstance(reply, dict):
        raise LlmReplyError("the reply is not a JSON object")
    missing = [name for name in REQUIRED_FIELDS if name not in reply]
    if missing:
        raise LlmReplyError(f"the reply lacks {', '.join(missing)}")
    return reply


def _strings(reply: dict[str, Any], name: str) -> list[str]:
    items = reply.get(name, [])
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise LlmReplyError(f"{name} must be a list of strings")
    return items


def _refuse_dangerous_advice(decision: str, reasoning: str, suggestions: list[str]) -> None:
    """An expert that approves while recommending something dangerous, or suggests a command the
    rule layer blocks, is not to be trusted with this vote."""
    if decision == "approve":
        for phrase in DANGEROUS_PHRASES:
            if phrase in reasoning.lower():
                raise LlmReplyError(f"approves while recommending a dangerous action ({phrase!r})")
    for suggestion in suggestions:
        findings = analyze_command(suggestion, "/", "/root").blocking
        if findings:
            raise LlmReplyError(f"suggests a dangerous command ({findings[0].rule}): {suggestion[:120]!r}")


def _blocked(reason: str) -> dict[str, Any]:
    return {
        "decision": "block",
        "confidence": 0.0,
        "reasoning": reason[:4000],
        "concerns": ["llm_failure"],
        "suggestions": [],
    }
