"""The corpus against the gate's default policy with no experts: approved -> allow, blocked -> deny,
escalate -> ask (what Claude Code's hook answers without a panel)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lighthouse.validation.gate import DecisionGate
from lighthouse.validation.policy import PolicyEngine, default_policies
from tests.validation.build_corpus import CORPUS

HOME = "/home/dev"
TMPDIR = "/tmp/dev-tmp"
ANSWER = {"approved": "allow", "blocked": "deny", "escalate": "ask"}


def corpus() -> Iterator[dict[str, Any]]:
    for line in CORPUS.read_text().splitlines():
        yield json.loads(line)


def default_gate() -> DecisionGate:
    engine = PolicyEngine(default_policies(), version=1)
    return DecisionGate(lambda: engine, home="/nonexistent-service-home")


def answer_in_process(gate: DecisionGate, item: dict[str, Any]) -> tuple[str, str]:
    env = {"HOME": HOME, "TMPDIR": TMPDIR}
    decided = gate.decide("corpus", "agent", item["tool_name"], item["tool_input"], item["cwd"], env)
    return ANSWER[decided.decision], decided.reason


@dataclass
class Score:
    total: int = 0
    wrong: list[tuple[dict[str, Any], str, str]] = field(default_factory=list)
    by_expect: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_class: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, item: dict[str, Any], got: str, reason: str) -> None:
        self.total += 1
        self.by_expect[(item["expect"], got)] += 1
        self.by_class[item["class"]][("right" if got == item["expect"] else "wrong")] += 1
        if got != item["expect"]:
            self.wrong.append((item, got, reason))

    def rate(self, expect: str) -> float:
        cases = sum(n for (e, _), n in self.by_expect.items() if e == expect)
        return self.by_expect[(expect, expect)] / cases if cases else 1.0

    @property
    def dangerous_allows(self) -> int:
        return self.by_expect[("deny", "allow")]

    def summary(self) -> dict[str, Any]:
        return {
            "cases": self.total,
            "deny_recall": round(self.rate("deny"), 4),
            "allow_rate": round(self.rate("allow"), 4),
            "ask_rate": round(self.rate("ask"), 4),
            "dangerous_allows": self.dangerous_allows,
            "wrong": len(self.wrong),
        }


def score(answer: Callable[[dict[str, Any]], tuple[str, str]], items: list[dict[str, Any]] | None = None) -> Score:
    result = Score()
    for item in items if items is not None else corpus():
        got, reason = answer(item)
        result.add(item, got, reason)
    return result
