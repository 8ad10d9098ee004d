"""Rule layer + policy layer -> one decision, in-process and cached. No storage, no network."""

from __future__ import annotations

import json
import os
import posixpath
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from lighthouse.validation import catalog
from lighthouse.validation.policy import PolicyEngine, PolicyVerdict
from lighthouse.validation.rules import Analysis, Facts, analyze, resolve
from lighthouse.validation.where import Where

Decision = Literal["approved", "blocked", "escalate"]
TEMP_DIRS = ("/tmp", "/var/tmp")  # noqa: S108 - deleting or writing there is everyday work
# Where operating systems put per-user temp dirs (Linux, macOS's /var/folders/../T).
_TEMP_PARENTS = ("/tmp/", "/var/tmp/", "/var/folders/", "/private/var/folders/", "/private/tmp/", "/run/user/")  # noqa: S108
# The operating system's own directories (and the bare parents of projects): never a project root.
_SYSTEM_DIR = re.compile(
    r"^/(etc|usr|bin|sbin|lib\w*|boot|dev|proc|sys|var|home|Users|root|opt|System|Library)?/?$"
    r"|^/(etc|usr|bin|sbin|lib\w*|boot|dev|proc|sys|System)(/|$)"
)
_HOME_OF = re.compile(r"^(/home/[^/]+|/Users/[^/]+|/root)(?=/|$)")
# The rule layer's deny classes (the last of a refusal's matched rules); a feature flag can switch
# each off per agent (lighthouse.flags: gate_deny_blocking_rules, gate_deny_outside_roots).
BLOCKING_RULE = "deny:blocking_rule"
OUTSIDE_ROOTS = "deny:outside_roots"
DENY_CLASSES = (BLOCKING_RULE, OUTSIDE_ROOTS)
DenyClassSwitch = Callable[[str, str, str], bool]  # (agent id, role, deny class) -> enforced?
K = TypeVar("K")
V = TypeVar("V")


class LruCache(Generic[K, V]):
    """A bounded, thread-safe LRU map (functools.lru_cache cannot key on dicts or report hits)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass(frozen=True)
class GateDecision:
    decision: Decision
    confidence: float
    reason: str
    matched_rules: list[str]
    cache_hit: bool
    layer: Literal["rules", "policy", "fallback"]
    facts: Facts
    policy_version: int = 0
    policies: tuple[str, ...] = field(default=())


class DecisionGate:
    """Decides a tool call from its text, the resolved paths and the current Cedar policies.

    `policy_engine` is called per decision so a new policy version takes effect without a restart.
    """

    def __init__(
        self,
        policy_engine: Callable[[], PolicyEngine],
        allowed_roots: Sequence[str] = (),
        home: str | None = None,
        cache_size: int = 10_000,
        temp_dirs: Sequence[str] = TEMP_DIRS,
        enforces: DenyClassSwitch | None = None,
    ) -> None:
        self._engine = policy_engine
        self._enforces = enforces or _always
        self._roots = tuple(allowed_roots)
        self._temp = tuple(temp_dirs)
        self._home = home or os.path.expanduser("~")
        self._analyses: LruCache[tuple[Any, ...], Analysis] = LruCache(cache_size)
        self._verdicts: LruCache[tuple[Any, ...], PolicyVerdict] = LruCache(cache_size)

    def roots_for(self, cwd: str | None) -> tuple[str, ...]:
        """The configured roots, or else the project directory the agent works in (never `/`, a home
        directory, or the operating system's own directories: a cwd there makes nothing a project)."""
        if self._roots:
            return self._roots
        real = os.path.realpath(cwd) if cwd else ""
        if not real or real == os.path.realpath(self._home) or _SYSTEM_DIR.match(real) or _HOME_OF.fullmatch(real):
            return ()
        return (str(cwd),)

    def where(self, cwd: str | None, env: dict[str, str] | None = None) -> Where:
        """The request's own HOME and TMPDIR (else HOME from a cwd under /home/<user>, else this
        service's), its project roots, and the temp dirs."""
        env = env or {}
        home = env.get("HOME") or self._home_of(cwd)
        roots = self.roots_for(cwd)
        work_dir = cwd or (roots[0] if roots else "/")
        tmpdir = posixpath.normpath(env["TMPDIR"]) if env.get("TMPDIR") else ""
        extra = [tmpdir] if _plausible_temp(tmpdir, home) else []
        return Where(work_dir, home, tmpdir or "/tmp", roots, tuple(dict.fromkeys((*self._temp, *extra))))  # noqa: S108

    def _home_of(self, cwd: str | None) -> str:
        inferred = _HOME_OF.match(cwd or "")
        return inferred.group(0) if inferred else self._home

    def decide(
        self,
        agent_id: str,
        role: str,
        tool_name: str,
        tool_input: dict[str, Any],
        cwd: str | None = None,
        env: dict[str, str] | None = None,
    ) -> GateDecision:
        where = self.where(cwd, env)
        work_dir, roots = where.cwd, (*where.roots, *where.temp)
        analysis_key = (
            tool_name,
            json.dumps(tool_input, sort_keys=True, default=str),
            work_dir,
            where.home,
            where.tmpdir,
        )
        analysis = self._analyses.get(analysis_key)
        analysis_hit = analysis is not None
        if analysis is None:
            analysis = analyze(tool_name, tool_input, work_dir, where.home, where)
            self._analyses.put(analysis_key, analysis)
        facts = resolve(analysis, work_dir, roots, where.home, where.tmpdir)
        blocked = _blocked_by_rules(facts, analysis_hit)
        if blocked is not None:
            deny_class = blocked.matched_rules[-1] if blocked.matched_rules else ""
            if deny_class in DENY_CLASSES and not self._enforces(agent_id, role, deny_class):
                return _escalated_instead(blocked, deny_class)
            return blocked
        engine = self._engine()
        verdict_key = (
            agent_id,
            role,
            analysis_key,
            facts.resolved_reads,
            facts.resolved_writes,
            facts.cwd,
            roots,
            engine.version,
        )
        verdict = self._verdicts.get(verdict_key)
        cache_hit = verdict is not None
        if verdict is None:
            verdict = engine.evaluate(agent_id, role, facts)
            if verdict.outcome != "error":
                self._verdicts.put(verdict_key, verdict)
        return _by_policy(tool_name, facts, verdict, cache_hit, engine.version)

    def clear(self) -> None:
        self._analyses.clear()
        self._verdicts.clear()


def _always(agent_id: str, role: str, deny_class: str) -> bool:
    return True


def _blocked_by_rules(facts: Facts, cache_hit: bool) -> GateDecision | None:
    """The rule layer's own refusals: a blocking finding, or a write outside the allowed roots. The
    last matched rule names the deny class (DENY_CLASSES)."""
    rules = facts.matched_rules
    if facts.analysis.blocking:
        finding = facts.analysis.blocking[0]
        reason = f"blocked by rule {finding.rule}: {finding.reason}"
        return GateDecision("blocked", 0.99, reason, [*rules, BLOCKING_RULE], cache_hit, "rules", facts)
    outside_writes = [p for p in facts.resolved_writes if p in facts.outside_roots]
    if outside_writes:
        reason = f"writes outside the allowed roots: {outside_writes[0]}"
        return GateDecision("blocked", 0.95, reason, [*rules, OUTSIDE_ROOTS], cache_hit, "rules", facts)
    return None


def _escalated_instead(blocked: GateDecision, deny_class: str) -> GateDecision:
    """A refusal whose deny class is switched off for this agent (a rollout): the experts decide it;
    it is never approved without them."""
    reason = f"{blocked.reason} (deny class {deny_class} is not enforced for this agent: escalated)"
    rules = [*blocked.matched_rules, f"deny_class_off:{deny_class}"]
    return GateDecision("escalate", 0.5, reason, rules, blocked.cache_hit, "rules", blocked.facts)


def _by_policy(tool_name: str, facts: Facts, verdict: PolicyVerdict, cache_hit: bool, version: int) -> GateDecision:
    rules = facts.matched_rules
    policy_rules = rules + [f"policy:{name}" for name in verdict.policies]
    policies = ", ".join(verdict.policies)
    command_class = facts.analysis.command_class
    if verdict.outcome == "error":
        # Fall back to the rule layer, which found nothing to block; never approve on an error.
        reason = f"policy evaluation failed ({verdict.error}); escalated, never approved on an error"
        return GateDecision(
            "escalate", 0.3, reason, [*rules, "policy_error_fallback"], cache_hit, "fallback", facts, version
        )
    if verdict.outcome == "allow":
        confidence = 0.95 if command_class == "read_only" else 0.9
        reason = f"permitted by policy {policies}"
        return GateDecision(
            "approved", confidence, reason, policy_rules, cache_hit, "policy", facts, version, verdict.policies
        )
    if verdict.outcome == "forbid":
        reason = _forbid_reason(facts, verdict.policies)
        return GateDecision("blocked", 0.9, reason, policy_rules, cache_hit, "policy", facts, version, verdict.policies)
    reason = f"no policy permits {tool_name} ({command_class}); needs a review"
    return GateDecision("escalate", 0.5, reason, policy_rules, cache_hit, "policy", facts, version)


def _forbid_reason(facts: Facts, forbidding: tuple[str, ...]) -> str:
    """Which rule a forbid enforces, what it matched and the safer alternative, when a class says so."""
    policies = ", ".join(forbidding)
    denied = [f for f in facts.analysis.findings if f.severity == "deny"]
    reason = f"forbidden by policy {policies}"
    if denied:
        reason = f"denied by rule {denied[0].rule} (policy {policies}): {denied[0].reason}"
    elif "deny-push-to-protected-branches" in forbidding:
        described = catalog.describe("git_push_protected", ", ".join(facts.analysis.push_branches))
        reason = f"denied by rule git_push_protected (policy {policies}): {described}"
    if facts.outside_roots:
        reason += f" (outside the allowed roots: {facts.outside_roots[0]})"
    return reason


def _plausible_temp(tmpdir: str, home: str) -> bool:
    """The request says what its TMPDIR is; it makes deleting there everyday work only if it is a
    temp dir by its place (under a system temp dir, or a `tmp`/`temp` dir inside HOME), so an agent
    cannot declare `/` or its home its temp dir."""
    if not tmpdir or tmpdir.startswith(_TEMP_PARENTS):
        return bool(tmpdir)
    name = posixpath.basename(tmpdir).lower().lstrip(".")
    return name in ("tmp", "temp") and tmpdir.startswith(home.rstrip("/") + "/")
