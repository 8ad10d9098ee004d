"""The labelled gate corpus (tests/validation/corpus) through Claude Code's hooks on a running platform:
every case over the http hook, and a fixed sample over the command hook (`lighthouse hook
claude-code`, one process per call, as Claude Code runs it). No experts are online in this module's
platform, so the default policy alone answers: allow, deny or ask."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LIGHTHOUSE, Platform
from tests.validation.scoring import Score, corpus

pytestmark = pytest.mark.e2e

AGENTS = 12  # the corpus is spread over agents: each may validate 600 calls a minute (burst 100)
COMMAND_HOOK_EVERY = 15  # the command hook starts a process per call: a fixed 1-in-15 sample


def claude_code_input(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "session_id": "corpus",
        "cwd": item["cwd"],
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": item["tool_name"],
        "tool_input": item["tool_input"],
        "tool_use_id": "toolu_corpus",
    }


@pytest.fixture(scope="module")
def hook_tokens(platform: Platform) -> list[str]:
    tokens = []
    for index in range(AGENTS):
        agent_id = f"e2e-corpus-{index}"
        secret = json.loads(platform.cli("agents", "add", agent_id, "--json").stdout)["secret"]
        issued = platform.cli("hook", "token", agent_id, "--secret", secret)
        assert issued.returncode == 0, issued.stderr
        tokens.append(issued.stdout.strip())
    return tokens


def _scored(
    items: list[dict[str, Any]], ask: Callable[[tuple[int, dict[str, Any]]], tuple[str, str]], threads: int
) -> Score:
    """Each item's (answer, reason) from `ask`, `threads` at a time, scored against its label."""
    with ThreadPoolExecutor(threads) as pool:
        answers = list(pool.map(ask, enumerate(items)))
    score = Score()
    for item, (got, reason) in zip(items, answers, strict=True):
        score.add(item, got, reason)
    return score


def _report(score: Score, how: str) -> str:
    wrong = [f"{item['expect']}->{got}: {item['tool_input']}" for item, got, _ in score.wrong[:15]]
    print(f"corpus over the {how}: {json.dumps(score.summary())}")
    return "\n".join(wrong)


def test_the_whole_corpus_over_the_http_hook(platform: Platform, hook_tokens: list[str]) -> None:
    items = list(corpus())
    sessions = [requests.Session() for _ in hook_tokens]
    for session, token in zip(sessions, hook_tokens, strict=True):
        session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})

    def ask(numbered: tuple[int, dict[str, Any]]) -> tuple[str, str]:
        index, item = numbered
        response = sessions[index % len(sessions)].post(
            f"{platform.api_url}/hooks/claude-code/pre-tool-use", data=json.dumps(claude_code_input(item)), timeout=60
        )
        assert response.status_code == 200, response.text
        output = response.json()["hookSpecificOutput"]
        return output["permissionDecision"], output["permissionDecisionReason"]

    score = _scored(items, ask, threads=4)
    wrong = _report(score, "http hook")
    assert score.dangerous_allows == 0, wrong
    assert score.wrong == [], wrong


def test_a_sample_of_the_corpus_over_the_command_hook(platform: Platform, hook_tokens: list[str]) -> None:
    items = list(corpus())[::COMMAND_HOOK_EVERY]

    def ask(numbered: tuple[int, dict[str, Any]]) -> tuple[str, str]:
        index, item = numbered
        ran = subprocess.run(
            [LIGHTHOUSE, "hook", "claude-code", "--api-url", platform.api_url],
            input=json.dumps(claude_code_input(item)),
            capture_output=True,
            text=True,
            env={**os.environ, "LIGHTHOUSE_HOOK_TOKEN": hook_tokens[index % len(hook_tokens)]},
            timeout=120,
            check=False,
        )
        if ran.returncode == 2:
            return "deny", ran.stderr
        assert ran.returncode == 0, ran.stderr
        output = json.loads(ran.stdout)["hookSpecificOutput"]
        return output["permissionDecision"], output["permissionDecisionReason"]

    score = _scored(items, ask, threads=2)
    wrong = _report(score, f"command hook (1 in {COMMAND_HOOK_EVERY})")
    assert score.total >= 150
    assert score.wrong == [], wrong
